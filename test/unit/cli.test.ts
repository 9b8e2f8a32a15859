import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const berth = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });

describe('berth CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--version prints the package version', () => {
    const result = berth(['--version']);
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('serve --check-config prints the effective configuration: file, then environment', async () => {
    const file = join(dir, 'berth.yaml');
    await writeFile(file, 'http:\n  addr: 0.0.0.0:6000\nstorage:\n  root: /srv/registry\n');
    const result = berth(['serve', '--config', file, '--check-config'], { BERTH_HTTP_ADDR: '127.0.0.1:5055' });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('configuration is valid');
    const printed = JSON.parse(result.stdout.slice(0, result.stdout.lastIndexOf('}') + 1)) as {
      http: { addr: string };
      storage: { root: string };
    };
    expect(printed.http.addr).toBe('127.0.0.1:5055');
    expect(printed.storage.root).toBe('/srv/registry');
  });

  it('an invalid configuration exits 1 naming the key', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'storage:\n  fsync: sometimes\n');
    const result = berth(['serve', '--config', file, '--check-config']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('storage.fsync');
  });

  it('an unknown command prints usage and exits 2', () => {
    const result = berth(['frobnicate']);
    expect(result.status).toBe(2);
    expect(result.stdout).toContain('usage: berth <command>');
    expect(result.stdout).toContain('serve');
  });
});
