import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { call, expectError, locationUrl, OCTET, randomBlob, sha256, withQuery } from '../helpers/oci.js';
import { killHard, spawnRegistry, type RegistryProcess } from '../helpers/process.js';
import { seedUsers } from '../helpers/users.js';

const running: RegistryProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const registry of running.splice(0)) if (registry.child.exitCode === null && registry.child.signalCode === null) await killHard(registry);
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function start(dataDir: string, env: Record<string, string> = {}): Promise<RegistryProcess> {
  const registry = await spawnRegistry(dataDir, env);
  running.push(registry);
  return registry;
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-ops-'));
  dirs.push(dir);
  return dir;
}

/** A PATCH whose body the test writes piece by piece; `done` is its status (or the error if cut off). */
function slowPatch(url: string) {
  const u = new URL(url);
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PATCH', agent: false, headers: OCTET });
  const done = new Promise<{ status: number; range?: string }>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, range: res.headers.range }));
    });
    req.on('error', reject);
  });
  const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => req.write(chunk, (err) => (err ? reject(err) : resolve())));
  return { write, end: () => req.end(), done };
}

async function openSession(url: string, repo: string): Promise<string> {
  const res = await call(url, 'POST', `/v2/${repo}/blobs/uploads/`);
  expect(res.status).toBe(202);
  return locationUrl(res, url);
}

/** Waits until the server has the session at `offset` bytes. */
async function offsetReaches(session: string, base: string, offset: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const status = await call(base, 'GET', session);
    if (status.headers.get('range') === `0-${offset - 1}`) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the session never reached ${offset} bytes`);
}

describe('graceful shutdown', () => {
  it('lets an upload in progress finish after SIGTERM, refuses new connections, and exits 0', async () => {
    const dir = await dataDir();
    const registry = await start(dir, { BERTH_LIMITS_SHUTDOWN_TIMEOUT: '30s', BERTH_STORAGE_FSYNC: 'false' });
    const blob = randomBlob(3 * 1024 * 1024);
    const session = await openSession(registry.url, 'team/app');
    const upload = slowPatch(session);
    await upload.write(blob.subarray(0, 1024 * 1024));
    await offsetReaches(session, registry.url, 1024 * 1024);

    registry.child.kill('SIGTERM');
    // The listener closes at once: a new connection is refused.
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      refused = await call(registry.url, 'GET', '/v2/').then(() => false, () => true);
      if (!refused) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(refused).toBe(true);
    expect(registry.child.exitCode).toBe(null);

    await upload.write(blob.subarray(1024 * 1024));
    upload.end();
    expect(await upload.done).toEqual({ status: 202, range: `0-${blob.length - 1}` });
    await registry.exited;
    expect(registry.child.exitCode).toBe(0);

    // The index was closed cleanly: a restart completes the session.
    const again = await start(dir);
    const finished = await call(again.url, 'PUT', withQuery(session.replace(registry.url, again.url), { digest: sha256(blob) }));
    expect(finished.status, finished.text).toBe(201);
    expect((await call(again.url, 'GET', `/v2/team/app/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
  });

  it('cuts off an upload still running at limits.shutdownTimeout; it resumes after a restart and nothing partial is visible', async () => {
    const dir = await dataDir();
    const registry = await start(dir, { BERTH_LIMITS_SHUTDOWN_TIMEOUT: '500ms', BERTH_STORAGE_FSYNC: 'false' });
    const blob = randomBlob(2 * 1024 * 1024);
    const session = await openSession(registry.url, 'team/app');
    const upload = slowPatch(session);
    upload.done.catch(() => undefined);
    await upload.write(blob.subarray(0, 1024 * 1024));
    await offsetReaches(session, registry.url, 1024 * 1024);
    registry.child.kill('SIGTERM');
    await registry.exited;
    expect(registry.child.exitCode).toBe(0);
    await expect(upload.done).rejects.toThrow();

    const again = await start(dir);
    const moved = session.replace(registry.url, again.url);
    const status = await call(again.url, 'GET', moved);
    expect(status.status).toBe(204);
    const offset = Number(status.headers.get('range')!.split('-')[1]) + 1;
    expect(offset).toBe(1024 * 1024);
    expect((await call(again.url, 'GET', `/v2/team/app/blobs/${sha256(blob)}`)).status).toBe(404);
    const rest = blob.subarray(offset);
    const finished = await call(again.url, 'PUT', withQuery(moved, { digest: sha256(blob) }), {
      headers: { ...OCTET, 'content-range': `${offset}-${blob.length - 1}` },
      body: rest,
    });
    expect(finished.status, finished.text).toBe(201);
    expect((await call(again.url, 'GET', `/v2/team/app/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
  });
});

describe('operating the process', () => {
  it('toggles read-only mode on SIGUSR2 and serves /metrics on metrics.addr only', async () => {
    const registry = await start(await dataDir(), { BERTH_METRICS_ADDR: '127.0.0.1:0' });
    const metricsUrl = `http://127.0.0.1:${registry.ready.metricsPort as number}`;
    expect((await call(metricsUrl, 'GET', '/metrics')).text).toContain('berth_http_requests_total');
    expect((await call(registry.url, 'GET', '/metrics')).status).toBe(404);

    registry.child.kill('SIGUSR2');
    let res = await call(registry.url, 'POST', '/v2/a/blobs/uploads/');
    for (let i = 0; i < 100 && res.status !== 405; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      res = await call(registry.url, 'POST', '/v2/a/blobs/uploads/');
    }
    expectError(res, 405, 'UNSUPPORTED');
    expect((await call(registry.url, 'GET', '/v2/')).status).toBe(200);

    registry.child.kill('SIGUSR2');
    for (let i = 0; i < 100 && res.status !== 202; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      res = await call(registry.url, 'POST', '/v2/a/blobs/uploads/');
    }
    expect(res.status).toBe(202);
  });

  it('berth healthcheck exits 0 while the local server is ready and 1 once it is gone', async () => {
    const registry = await start(await dataDir(), { BERTH_HEALTH_MIN_FREE_BYTES: '0' });
    const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
    const check = (args: string[] = []) =>
      spawnSync(process.execPath, [cli, 'healthcheck', ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, BERTH_HTTP_ADDR: `0.0.0.0:${registry.ready.port as number}` },
      });
    const ready = check();
    expect(ready.status, ready.stderr).toBe(0);
    expect(ready.stdout).toContain(`http://127.0.0.1:${registry.ready.port as number}/readyz: 200`);
    expect(check(['--live']).status).toBe(0);
    await killHard(registry);
    const gone = check();
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/ECONNREFUSED/);
  });

  it('berth read-only on|off|status switches the local server, with an admin\'s credentials when auth is on', async () => {
    const dir = await dataDir();
    await seedUsers(dir, [
      { name: 'root', password: 'r00t-pass', groups: ['admins'] },
      { name: 'ci', password: 'ci-pass' },
    ]);
    const serverEnv = {
      BERTH_AUTH_MODE: 'basic',
      BERTH_AUTH_ADMIN_GROUPS: '["admins"]',
      BERTH_AUTH_RULES: '[{"repositories":"**","users":["*"],"actions":["pull","push"]}]',
    };
    const registry = await start(dir, serverEnv);
    const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
    const readOnly = (args: string[], env: Record<string, string> = {}, input?: string) =>
      spawnSync(process.execPath, [cli, 'read-only', ...args], {
        encoding: 'utf8',
        input,
        env: { PATH: process.env.PATH, ...serverEnv, BERTH_HTTP_ADDR: `:${registry.ready.port as number}`, ...env },
      });
    const ci = { authorization: `Basic ${Buffer.from('ci:ci-pass').toString('base64')}` };

    const anonymous = readOnly(['on']);
    expect(anonymous.status).toBe(1);
    expect(anonymous.stderr).toMatch(/^berth: http:\/\/127\.0\.0\.1:\d+ asks for credentials: give an admin's with --user NAME and --password-stdin .*\n$/);
    const notAdmin = readOnly(['on', '--user', 'ci'], { BERTH_ADMIN_PASSWORD: 'ci-pass' });
    expect(notAdmin.stderr).toBe(`berth: ci may not use the admin API of http://127.0.0.1:${registry.ready.port as number}: only members of auth.adminGroups may\n`);
    expect(readOnly(['on', '--user', 'root', '--password-stdin'], {}, 'wrong\n').stderr).toMatch(/refused the credentials of root/);
    expect((await call(registry.url, 'POST', '/v2/a/blobs/uploads/', { headers: ci })).status).toBe(202);

    const on = readOnly(['on', '--reason', 'backup', '--user', 'root', '--password-stdin'], {}, 'r00t-pass\n');
    expect(on.stderr).toBe('');
    expect(on.stdout).toMatch(/^read-only since \d{4}-\d\d-\d\dT.* \(backup\)\n$/);
    expectError(await call(registry.url, 'POST', '/v2/a/blobs/uploads/', { headers: ci }), 405, 'UNSUPPORTED');
    const status = readOnly(['status'], { BERTH_ADMIN_USER: 'root', BERTH_ADMIN_PASSWORD: 'r00t-pass' });
    expect(status.stdout).toBe(on.stdout);
    const off = readOnly(['off'], { BERTH_ADMIN_USER: 'root', BERTH_ADMIN_PASSWORD: 'r00t-pass' });
    expect(off.stdout).toBe('read-write\n');
    expect((await call(registry.url, 'POST', '/v2/a/blobs/uploads/', { headers: ci })).status).toBe(202);

    await killHard(registry);
    const gone = readOnly(['status']);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/^berth: no Berth answers at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): is it running, with this configuration\?\n$/);
    expect(readOnly(['sideways']).status).toBe(2);
  });
});
