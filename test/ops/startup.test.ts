import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killHard, spawnRegistry } from '../helpers/process.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `berth …` as a user would start it, with only the given environment; `asNobody`
 * runs it as an unprivileged user (setpriv), for permission mistakes.
 */
function berth(args: string[], env: Record<string, string> = {}, options: { asNobody?: boolean; cwd?: string } = {}): Promise<Outcome> {
  const command = options.asNobody
    ? ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, CLI, ...args]] as const
    : [process.execPath, [CLI, ...args]] as const;
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command[1], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, BERTH_HTTP_ADDR: '127.0.0.1:0', BERTH_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // A mistake must be told at once; a server that starts instead is stopped here.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exit code 1 and exactly one line on stderr, `berth: …`, matching `pattern`; no stack trace. */
function expectOneLine(outcome: Outcome, pattern: RegExp): void {
  const lines = outcome.stderr.trimEnd().split('\n');
  expect(lines, outcome.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^berth( user)?: /);
  expect(lines[0]).toMatch(pattern);
  expect(outcome.stderr).not.toMatch(/^\s+at /m);
  expect(outcome.code).toBe(1);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-startup-'));
  await chmod(dir, 0o755); // the unprivileged runs must reach what is inside
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('startup mistakes get one line saying what to fix', () => {
  it('a port in use', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      const outcome = await berth(['serve'], { BERTH_HTTP_ADDR: `127.0.0.1:${port}`, BERTH_STORAGE_ROOT: join(dir, 'in-use') });
      expectOneLine(outcome, new RegExp(`http\\.addr 127\\.0\\.0\\.1:${port}: port ${port} is in use by another process`));
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('a port above 65535, from the environment, names the variable', async () => {
    expectOneLine(await berth(['serve'], { BERTH_HTTP_ADDR: '0.0.0.0:70000' }), /^berth: BERTH_HTTP_ADDR: the port must be between 0 and 65535$/);
    expectOneLine(await berth(['serve'], { BERTH_HTTP_ADDR: 'localhost' }), /^berth: BERTH_HTTP_ADDR: expected HOST:PORT/);
    expectOneLine(await berth(['serve'], { BERTH_STORAGE_FSYNC: 'sometimes' }), /^berth: BERTH_STORAGE_FSYNC: /);
  });

  it('a port above 65535 in the file names the file and the key', async () => {
    const file = join(dir, 'port.yaml');
    await writeFile(file, 'metrics:\n  addr: 127.0.0.1:99999\n');
    expectOneLine(await berth(['serve', '--config', file]), new RegExp(`^berth: ${file}: metrics\\.addr: the port must be between 0 and 65535$`));
  });

  it('a missing configuration file, or a directory given as one', async () => {
    const missing = join(dir, 'nope.yaml');
    expectOneLine(await berth(['serve', '--config', missing]), new RegExp(`configuration file ${missing} does not exist`));
    expectOneLine(await berth(['serve'], { BERTH_CONFIG: dir }), new RegExp(`configuration file ${dir} is a directory, not a file`));
    expectOneLine(await berth(['gc', '--config', missing]), /does not exist/);
  });

  it('an unknown BERTH_ variable is refused with the nearest known one; documented ones are accepted', async () => {
    expectOneLine(
      await berth(['serve'], { BERTH_STORAGE_ROT: join(dir, 'typo') }),
      /^berth: BERTH_STORAGE_ROT is not a Berth setting \(did you mean BERTH_STORAGE_ROOT\?\)/,
    );
    expectOneLine(await berth(['serve'], { BERTH_SOMETHING_ELSE_ENTIRELY: '1' }), /^berth: BERTH_SOMETHING_ELSE_ENTIRELY is not a Berth setting; /);
    const file = join(dir, 'ok.yaml');
    await writeFile(file, `storage:\n  root: ${join(dir, 'ok')}\n`);
    const valid = await berth(['serve', '--check-config'], { BERTH_CONFIG: file });
    expect(valid.code, valid.stderr).toBe(0);
  });

  it('a data directory that is a file, or below a file', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    expectOneLine(await berth(['serve'], { BERTH_STORAGE_ROOT: file }), new RegExp(`storage\\.root ${file}: ${file} is a file, not a directory`));
    expectOneLine(await berth(['serve'], { BERTH_STORAGE_ROOT: join(file, 'data') }), /a part of this path is a file, not a directory/);
  });

  it('a data directory under /proc is refused at once instead of hanging', async () => {
    expectOneLine(await berth(['serve'], { BERTH_STORAGE_ROOT: '/proc/berth-data' }), /storage\.root \/proc\/berth-data: this file system does not hold files/);
    expectOneLine(await berth(['user', 'list'], { BERTH_STORAGE_ROOT: '/proc/berth-data' }), /this file system does not hold files/);
  });

  it.runIf(asRoot)('a root-owned data directory, run as another user, says which chown fixes it', async () => {
    const owned = join(dir, 'root-owned');
    await mkdir(owned, { mode: 0o755 });
    const outcome = await berth(['serve'], { BERTH_STORAGE_ROOT: owned }, { asNobody: true, cwd: dir });
    expectOneLine(outcome, new RegExp(`storage\\.root ${owned} is not writable by this user \\(uid ${NOBODY}\\): .*chown -R ${NOBODY}:${NOBODY} ${owned}`));
    // A maintenance command run by another user than the data's owner.
    const made = await berth(['user', 'list'], { BERTH_STORAGE_ROOT: owned });
    expect(made.code, made.stderr).toBe(0);
    const gc = await berth(['gc', '--dry-run'], { BERTH_STORAGE_ROOT: owned }, { asNobody: true, cwd: dir });
    expectOneLine(gc, new RegExp(`storage\\.root ${owned}: this user \\(uid ${NOBODY}\\) may not write its index \\(SQLITE_READONLY\\w*\\); run berth as the owner of the directory \\(uid 0\\)`));
    await rm(join(owned, 'index.db'));
    // A directory given to the user without -R: the index inside is still root's.
    await chown(owned, NOBODY, NOBODY);
    await writeFile(join(owned, 'index.db'), '');
    const inside = await berth(['serve'], { BERTH_STORAGE_ROOT: owned }, { asNobody: true, cwd: dir });
    expectOneLine(inside, new RegExp(`storage\\.root ${owned}: ${owned}/index\\.db is not writable by this user .*chown -R ${NOBODY}:${NOBODY} ${owned}`));
    // A directory the user cannot create.
    const below = join(dir, 'root-owned-parent', 'data');
    await mkdir(join(dir, 'root-owned-parent'), { mode: 0o755 });
    const create = await berth(['serve'], { BERTH_STORAGE_ROOT: below }, { asNobody: true, cwd: dir });
    expectOneLine(create, new RegExp(`storage\\.root ${below} cannot be created: this user \\(uid ${NOBODY}\\) may not write to ${dir}/root-owned-parent; give that to it with \`chown -R ${NOBODY}:${NOBODY} ${dir}/root-owned-parent\``));
  });

  it.runIf(asRoot)('a TLS key only root may read, and a port only root may bind', async () => {
    const certs = join(dir, 'certs');
    await mkdir(certs, { mode: 0o755 });
    await writeFile(join(certs, 'server.crt'), 'not read');
    await writeFile(join(certs, 'server.key'), 'secret', { mode: 0o600 });
    const data = join(dir, 'tls-data');
    await mkdir(data);
    await chown(data, NOBODY, NOBODY);
    const outcome = await berth(
      ['serve'],
      { BERTH_STORAGE_ROOT: data, BERTH_HTTP_TLS_CERT: join(certs, 'server.crt'), BERTH_HTTP_TLS_KEY: join(certs, 'server.key') },
      { asNobody: true, cwd: dir },
    );
    expectOneLine(outcome, new RegExp(`http\\.tlsKey ${certs}/server\\.key is not readable by this user \\(uid ${NOBODY}\\)`));
    const low = await berth(['serve'], { BERTH_STORAGE_ROOT: data, BERTH_HTTP_ADDR: '127.0.0.1:81' }, { asNobody: true, cwd: dir });
    expectOneLine(low, /http\.addr 127\.0\.0\.1:81: port 81 needs privileges/);
  });
});

describe('addresses as registry:2 writes them', () => {
  it(':PORT listens on every interface, IPv4 and IPv6', async () => {
    const registry = await spawnRegistry(join(dir, 'any-interface'), { BERTH_HTTP_ADDR: ':0', BERTH_METRICS_ADDR: ':0' });
    try {
      const port = registry.ready.port as number;
      expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
      expect((await fetch(`http://[::1]:${port}/v2/`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${registry.ready.metricsPort as number}/metrics`)).status).toBe(200);
    } finally {
      await killHard(registry);
    }
  });
});
