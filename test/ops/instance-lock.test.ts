import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { berthAsync, CLI } from '../gc/helpers.js';
import { call, randomBlob, sha256 } from '../helpers/oci.js';
import { killHard, spawnRegistry, type RegistryProcess } from '../helpers/process.js';
import { startRegistry } from '../helpers/registry.js';

const running: RegistryProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const registry of running.splice(0)) if (registry.child.exitCode === null && registry.child.signalCode === null) await killHard(registry);
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-lock-'));
  dirs.push(dir);
  return dir;
}

async function start(dir: string): Promise<RegistryProcess> {
  const registry = await spawnRegistry(dir);
  running.push(registry);
  return registry;
}

/** `berth serve` that is expected to refuse: its exit code and stderr (killed, and a failure, if it starts instead). */
function serveExpectingRefusal(dir: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: { PATH: process.env.PATH, BERTH_STORAGE_ROOT: dir, BERTH_HTTP_ADDR: '127.0.0.1:0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the second berth serve did not exit: it started beside the first'));
    }, 120_000);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}

/** A monolithic upload whose body the test writes piece by piece; `done` is its status. */
function slowUpload(url: string, repo: string, digest: string) {
  const u = new URL(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`);
  const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', agent: false });
  const done = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => req.write(chunk, (err) => (err ? reject(err) : resolve())));
  return { write, end: () => req.end(), done };
}

describe('one server per data directory', () => {
  it('refuses a second berth serve on the same root in one line naming the holder; the first one’s upload in flight completes', async () => {
    const dir = await dataDir();
    const first = await start(dir);
    const blob = randomBlob(2 * 1024 * 1024);
    const upload = slowUpload(first.url, 'team/app', sha256(blob));
    await upload.write(blob.subarray(0, 1024 * 1024));
    // The first chunk is in tmp/ now.
    for (let i = 0; i < 200 && (await readdir(join(dir, 'tmp'))).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await readdir(join(dir, 'tmp'))).length).toBe(1);

    const second = await serveExpectingRefusal(dir);
    expect(second.status).toBe(1);
    const message = second.stderr.trim();
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(
      new RegExp(`^berth: storage.root ${dir} is in use by another berth serve \\(pid ${first.child.pid} on host ${hostname()}, running since `),
    );
    expect(message).not.toMatch(/\n|    at /);
    // It touched nothing: the first server's upload is still in tmp/ and completes.
    expect((await readdir(join(dir, 'tmp'))).length).toBe(1);
    await upload.write(blob.subarray(1024 * 1024));
    upload.end();
    expect(await upload.done).toBe(201);
    const got = await call(first.url, 'GET', `/v2/team/app/blobs/${sha256(blob)}`);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256(blob));
  });

  it('the maintenance commands keep working beside a server', async () => {
    const dir = await dataDir();
    const server = await start(dir);
    expect((await call(server.url, 'POST', `/v2/team/app/blobs/uploads/?digest=${sha256('x')}`, { body: 'x' })).status).toBe(201);
    for (const args of [['gc', '--dry-run'], ['gc'], ['fsck'], ['du'], ['user', 'list'], ['repo', 'rm', 'team/app', '--dry-run']]) {
      const result = await berthAsync(args, dir);
      expect(result.status, `berth ${args.join(' ')}: ${result.stderr}`).toBe(0);
    }
    expect((await call(server.url, 'GET', '/v2/_catalog')).json()).toEqual({ repositories: ['team/app'] });
  });

  it('a kill -9 leaves no stale lock: the next server starts at once, and a clean stop releases it too', async () => {
    const dir = await dataDir();
    const killed = await start(dir);
    await killHard(killed);
    const next = await start(dir);
    expect((await call(next.url, 'GET', '/v2/')).status).toBe(200);
    next.child.kill('SIGTERM');
    await next.exited;
    expect(next.child.exitCode).toBe(0);
    const again = await start(dir);
    expect((await call(again.url, 'GET', '/v2/')).status).toBe(200);
  });

  it('holds within one process too: a second app on the same root is refused until the first closes', async () => {
    const dir = await dataDir();
    const first = await startRegistry({}, { dataDir: dir });
    await expect(startRegistry({}, { dataDir: dir })).rejects.toThrow(ConfigError);
    await expect(startRegistry({}, { dataDir: dir })).rejects.toThrow(`(pid ${process.pid} on host ${hostname()}`);
    await first.close();
    const second = await startRegistry({}, { dataDir: dir });
    expect((await call(second.url, 'GET', '/v2/')).status).toBe(200);
    await second.close();
  });
});
