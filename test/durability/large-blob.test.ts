import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRegistry, type RegistryProcess } from '../helpers/process.js';

const GiB = 1024 ** 3;
const SIZE = 2 * GiB;
const CHUNK = randomBytes(1024 * 1024);

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** Samples the registry's RSS until stopped; returns the peak. */
function watchRss(pid: number): () => number {
  let peak = rssBytes(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

/** Streams SIZE bytes (CHUNK repeated) as the body of one request, without holding them in memory. */
function streamUpload(url: string, method: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'Content-Type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    let sent = 0;
    const pump = () => {
      while (sent < SIZE) {
        sent += CHUNK.length;
        if (!req.write(CHUNK)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('a 2 GiB layer', () => {
  let dataDir: string;
  let registry: RegistryProcess;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-large-'));
    registry = await spawnRegistry(dataDir);
  });
  afterAll(async () => {
    registry.child.kill('SIGKILL');
    await registry.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('pushes and pulls with flat memory', { timeout: 900_000 }, async () => {
    const expected = createHash('sha256');
    for (let sent = 0; sent < SIZE; sent += CHUNK.length) expected.update(CHUNK);
    const digest = `sha256:${expected.digest('hex')}`;
    const pid = registry.child.pid!;
    const baseline = rssBytes(pid);

    const stopPush = watchRss(pid);
    const start = await fetch(`${registry.url}/v2/big/layer/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    expect(await streamUpload(`${registry.url}${location}`, 'PATCH')).toBe(202);
    const done = await fetch(`${registry.url}${location}?digest=${digest}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const pushPeak = stopPush();

    const stopPull = watchRss(pid);
    const res = await fetch(`${registry.url}/v2/big/layer/blobs/${digest}`);
    expect(res.headers.get('content-length')).toBe(String(SIZE));
    const actual = createHash('sha256');
    let received = 0;
    for await (const chunk of res.body!) {
      actual.update(chunk);
      received += chunk.length;
    }
    const pullPeak = stopPull();
    expect(received).toBe(SIZE);
    expect(`sha256:${actual.digest('hex')}`).toBe(digest);

    // Memory must not grow with blob size: a few stream buffers, not gigabytes.
    expect(pushPeak - baseline).toBeLessThan(128 * 1024 * 1024);
    expect(pullPeak - baseline).toBeLessThan(128 * 1024 * 1024);
  });
});
