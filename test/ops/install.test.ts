import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/* The ways the README gives to run `berth` after `npm install`, each run as written. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let version: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-install-'));
  version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `berth --version` looked up on a PATH of `bin` and the system's, from a directory outside the clone. */
function onPath(bin: string) {
  return spawnSync('berth', ['--version'], { cwd: dir, encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}` } });
}

describe('running the berth command', () => {
  it('./berth from the clone, and from anywhere by its path', () => {
    const local = spawnSync('./berth', ['--version'], { cwd: ROOT, encoding: 'utf8' });
    expect(local.stdout).toBe(`${version}\n`);
    const byPath = spawnSync(join(ROOT, 'berth'), ['--version'], { cwd: dir, encoding: 'utf8' });
    expect(byPath.stdout).toBe(`${version}\n`);
  });

  it('berth on the PATH through a symbolic link to the script', async () => {
    const bin = join(dir, 'local-bin');
    await mkdir(bin);
    await symlink(join(ROOT, 'berth'), join(bin, 'berth'));
    const result = onPath(bin);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${version}\n`);
  });

  it('berth on the PATH after npm install -g . (into a prefix of its own here)', () => {
    const prefix = join(dir, 'global');
    const install = spawnSync('npm', ['install', '-g', '.', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(install.status, install.stderr).toBe(0);
    const result = onPath(join(prefix, 'bin'));
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${version}\n`);
  });

  it('berth on the PATH after npm link (into a prefix of its own here)', () => {
    const prefix = join(dir, 'linked');
    const link = spawnSync('npm', ['link', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_prefix: prefix },
    });
    expect(link.status, link.stderr).toBe(0);
    const result = onPath(join(prefix, 'bin'));
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${version}\n`);
  });

  it('the script says what to do when dist/ was not built', async () => {
    const clone = join(dir, 'unbuilt');
    await mkdir(clone);
    await copyFile(join(ROOT, 'berth'), join(clone, 'berth'));
    const result = spawnSync('sh', [join(clone, 'berth'), '--version'], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`berth: ${clone}/dist/cli.js is missing: run npm install (or npm run build) in ${clone}\n`);
  });
});
