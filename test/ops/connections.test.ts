/**
 * Connections as a resource an attacker can exhaust: the connection limit derived from
 * the open-files limit, surviving when descriptors run out anyway, refused bodies that
 * are not read on, and bodies that stop sending.
 */
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { connectionLimit, openFilesLimit } from '../../src/ops/connections.js';
import { call, locationUrl, OCTET, randomBlob, sha256 } from '../helpers/oci.js';
import { killHard, spawnRegistry, type RegistryProcess } from '../helpers/process.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function spawn(env: Record<string, string>, openFiles?: number): Promise<{ registry: RegistryProcess; log: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-test-conn-'));
  const registry = await spawnRegistry(dir, env, { openFiles });
  const log: string[] = [];
  createInterface({ input: registry.child.stdout! }).on('line', (line) => log.push(line));
  cleanups.push(async () => {
    if (registry.child.exitCode === null && registry.child.signalCode === null) await killHard(registry);
    await rm(dir, { recursive: true, force: true });
  });
  return { registry, log };
}

/** Opens `n` idle TCP connections; counts those the server closed. */
async function hold(url: string, n: number) {
  const { hostname, port } = new URL(url);
  const state = { closed: 0, sockets: [] as Socket[] };
  for (let i = 0; i < n; i++) {
    const socket = connect(Number(port), hostname);
    socket.on('error', () => undefined);
    socket.on('close', () => state.closed++);
    state.sockets.push(socket);
  }
  await until(() => state.sockets.every((s) => !s.connecting), 'the connections');
  return { state, release: () => state.sockets.forEach((s) => s.destroy()) };
}

/** GET /v2/ until the server answers (it may still be closing connections that were just released). */
async function answers(url: string): Promise<number> {
  let status = 0;
  await until(async () => {
    status = await call(url, 'GET', '/v2/').then((r) => r.status, () => 0);
    return status !== 0;
  }, 'an answer');
  return status;
}

describe('the connection limit', () => {
  it('is half of what the open-files limit leaves, or limits.maxConnections', () => {
    expect(openFilesLimit(() => 'Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 524288               files\n')).toBe(1024);
    expect(openFilesLimit(() => 'Max open files            unlimited            unlimited            files\n')).toBeUndefined();
    expect(openFilesLimit(() => {
      throw new Error('ENOENT');
    })).toBeUndefined();
    expect(openFilesLimit()).toBeGreaterThan(0); // this machine's, from /proc/self/limits
    expect(connectionLimit(0, 1024)).toBe(480);
    expect(connectionLimit(0, 256)).toBe(96);
    expect(connectionLimit(0, 50)).toBe(8);
    expect(connectionLimit(0, undefined)).toBe(0);
    expect(connectionLimit(5000, 256)).toBe(5000);
  });

  it('under `ulimit -n 256`, keeps 96 connections and closes the others at once, and serves again when they go', async () => {
    const { registry, log } = await spawn({}, 256);
    expect(registry.ready.maxConnections).toBe(96);
    const { state, release } = await hold(registry.url, 300);
    await until(() => state.closed >= 300 - 96, 'the connections beyond the limit to be closed');
    await sleep(500);
    expect(state.closed).toBe(300 - 96);
    expect(registry.child.exitCode).toBeNull();
    release();
    expect(await answers(registry.url)).toBe(200);
    expect(log.some((line) => line.includes('connection limit reached'))).toBe(true);
  });

  it('survives running out of file descriptors (the limit set above them): no sampler or accept dies of EMFILE', async () => {
    const { registry } = await spawn({ BERTH_LIMITS_MAX_CONNECTIONS: '100000', BERTH_LIMITS_MAX_EVENT_LOOP_DELAY: '1s' }, 256);
    const { release } = await hold(registry.url, 400);
    // Every descriptor is taken; the event-loop sampler runs every second meanwhile.
    await sleep(3000);
    expect(registry.child.exitCode).toBeNull();
    release();
    expect(await answers(registry.url)).toBe(200);
    expect((await call(registry.url, 'GET', '/readyz')).status).toBe(200);
  });
});

/**
 * A request whose head and first body bytes go out at once, from a client that does not
 * close its side when the server closes its own (as an attacker would not); `answer()` is
 * the raw answer so far, `closed` settles when the connection is gone.
 */
function rawRequest(url: string, head: string, first: Buffer) {
  const { hostname, port } = new URL(url);
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true });
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(`${head}\r\n\r\n`);
  socket.write(first);
  return { socket, closed, answer: () => text };
}

describe('a refused request whose body was not read', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.close();
  });
  const connections = () => new Promise<number>((resolve, reject) => reg.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  it('is answered with Connection: close, and the connection closes however slowly the client keeps sending', async () => {
    // The body still sent after the answer is read for at most 5 s, or bodyIdleTimeout if shorter.
    reg = await startRegistry({ auth: { mode: 'basic' }, limits: { bodyIdleTimeout: '1s' } });
    const blob = randomBlob(1024);
    const requests = [
      // No credentials: 401, for a declared length and for a chunked body.
      { head: `POST /v2/a/b/blobs/uploads/?digest=${sha256(blob)} HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600`, first: blob, more: 'x' },
      { head: 'PUT /v2/a/b/manifests/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked', first: Buffer.from(`400\r\n${'x'.repeat(1024)}\r\n`), more: '1\r\nx\r\n' },
    ];
    for (const { head, first, more } of requests) {
      const client = rawRequest(reg.url, head, first);
      // The client goes on sending, a little at a time, as an attacker holding the connection would.
      const drip = setInterval(() => client.socket.write(more), 100);
      try {
        await until(() => client.answer().includes('\r\n\r\n'), 'the answer');
        expect(client.answer()).toMatch(/^HTTP\/1.1 401 /);
        expect(client.answer().toLowerCase()).toContain('connection: close');
        await until(async () => (await connections()) === 0, 'the server to close the connection');
        await client.closed; // the next drop it sends is refused
      } finally {
        clearInterval(drip);
        client.socket.destroy();
      }
    }
  });

  it('413 for a declared size beyond limits.maxBlobBytes closes too, also for a client that then sends nothing', async () => {
    reg = await startRegistry({ limits: { maxBlobBytes: 1024, bodyIdleTimeout: '1s' } });
    const head = `POST /v2/a/b/blobs/uploads/?digest=${sha256(Buffer.alloc(1))} HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576`;
    const client = rawRequest(reg.url, head, Buffer.alloc(1024));
    try {
      await until(() => client.answer().includes('\r\n\r\n'), 'the answer');
      expect(client.answer()).toMatch(/^HTTP\/1.1 413 /);
      expect(client.answer().toLowerCase()).toContain('connection: close');
      await until(async () => (await connections()) === 0, 'the server to close the connection');
    } finally {
      client.socket.destroy();
    }
  });

  it('a client sending a large body quickly still reads the answer', async () => {
    reg = await startRegistry({ auth: { mode: 'basic' } });
    for (let i = 0; i < 3; i++) {
      const answer = await new Promise<{ status: number; connection?: string }>((resolve, reject) => {
        const req = request(`${reg.url}/v2/a/b/blobs/uploads/?digest=${sha256(Buffer.alloc(1))}`, {
          method: 'POST',
          agent: false,
          headers: { ...OCTET, 'content-length': String(64 * 1024 * 1024) },
        });
        req.on('response', (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection });
        });
        req.on('error', reject);
        const chunk = Buffer.alloc(1024 * 1024);
        let sent = 0;
        const pump = () => {
          while (sent < 64 && req.write(chunk)) sent++;
          if (sent < 64) req.once('drain', pump);
        };
        pump();
      });
      expect(answer).toEqual({ status: 401, connection: 'close' });
    }
  });
});

describe('request bodies that stop sending', () => {
  it('are cut after limits.bodyIdleTimeout; a slow upload that keeps sending is not, and the cut session resumes', async () => {
    const { registry } = await spawn({ BERTH_LIMITS_BODY_IDLE_TIMEOUT: '2s' });
    const open = async () => {
      const res = await call(registry.url, 'POST', '/v2/slow/app/blobs/uploads/');
      expect(res.status).toBe(202);
      return new URL(locationUrl(res, registry.url));
    };
    const patch = (session: URL) => {
      const req = request(session, { method: 'PATCH', agent: false, headers: OCTET });
      const done = new Promise<{ status: number; range?: string } | Error>((resolve) => {
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, range: res.headers.range }));
        });
        req.on('error', (err) => resolve(err));
      });
      return { req, done };
    };

    // Steady: 1 KiB every 100 ms for 3 s, longer than the idle timeout in all.
    const steady = patch(await open());
    for (let i = 0; i < 30; i++) {
      steady.req.write(Buffer.alloc(1024, i));
      await sleep(100);
    }
    steady.req.end();
    expect(await steady.done).toEqual({ status: 202, range: '0-30719' });

    // Idle: 1 KiB, then nothing.
    const session = await open();
    const idle = patch(session);
    idle.req.write(Buffer.alloc(1024, 7));
    const result = await idle.done;
    expect(result).toBeInstanceOf(Error);
    expect(registry.child.exitCode).toBeNull();
    // The session is still there, and the upload goes on from what it kept.
    const status = await call(registry.url, 'GET', session.pathname);
    expect(status.status).toBe(204);
    const kept = status.headers.get('range') === '0-1023' ? 1024 : 0;
    const rest = Buffer.alloc(2048 - kept, 7);
    const full = Buffer.concat([Buffer.alloc(kept, 7), rest]);
    const put = await call(registry.url, 'PUT', `${session.pathname}?${new URLSearchParams({ ...Object.fromEntries(session.searchParams), digest: sha256(full) })}`, {
      headers: { ...OCTET, 'content-range': `${kept}-${2047}` },
      body: rest,
    });
    expect(put.status).toBe(201);
  });
});
