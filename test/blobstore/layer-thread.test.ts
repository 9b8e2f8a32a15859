/**
 * The layer thread on real files: following a file while it is written, a file renamed
 * before the job opened it, bad input that must not hold up the next job, cancellation.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayerThread } from '../../src/blobstore/layer-thread.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('layer thread', () => {
  let dir: string;
  let thread: LayerThread;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-layer-thread-'));
    thread = new LayerThread();
  });
  afterAll(async () => {
    await thread.terminate();
    await rm(dir, { recursive: true, force: true });
  });

  it('follows a gzip file while it is written, then finishes once told its size', async () => {
    const tar = randomBytes(3 * 1024 * 1024);
    const gz = gzipSync(tar);
    const path = join(dir, 'growing');
    await writeFile(path, gz.subarray(0, 1000));
    const { job, result } = thread.follow(path, 'gzip');
    for (let at = 1000; at < gz.length; at += 500_000) {
      await new Promise((r) => setTimeout(r, 30));
      await appendFile(path, gz.subarray(at, at + 500_000));
    }
    thread.end(job, gz.length, path);
    expect(await result).toEqual({ format: 'gzip', digest: sha256(tar), size: tar.length, error: undefined });
  });

  it('reads a followed file at its final path when it was renamed there before the job opened it', async () => {
    const tar = randomBytes(10_000);
    const gz = gzipSync(tar);
    const upload = join(dir, 'upload');
    const stored = join(dir, 'stored');
    await writeFile(upload, gz);
    const { job, result } = thread.follow(upload, 'gzip');
    await rename(upload, stored); // before the thread got the message
    thread.end(job, gz.length, stored);
    expect((await result).digest).toBe(sha256(tar));
  });

  it('bad streams are not valid layers and do not hold up the jobs after them', async () => {
    const bad = join(dir, 'bad.gz');
    await writeFile(bad, Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08]), randomBytes(5000)]));
    const zstdBad = join(dir, 'bad.zst');
    await writeFile(zstdBad, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(5000)]));
    const good = join(dir, 'good.gz');
    const tar = randomBytes(1000);
    await writeFile(good, gzipSync(tar));
    const [a, b, c] = await Promise.all([thread.inspect(bad, 5003), thread.inspect(zstdBad, 5004), thread.inspect(good, gzipSync(tar).length)]);
    expect(a.format).toBe('invalid');
    expect(a.error).toMatch(/^not a valid gzip stream/);
    expect(b.format).toBe('invalid');
    expect(b.error).toMatch(/^not a valid zstd stream/);
    expect(c.digest).toBe(sha256(tar));
  });

  it('an uncompressed file holds itself; a cancelled job rejects and the thread goes on', async () => {
    const plain = join(dir, 'plain');
    await writeFile(plain, 'plain text');
    expect((await thread.inspect(plain, 10)).format).toBe('none');
    const waiting = join(dir, 'never-ends');
    await writeFile(waiting, gzipSync(randomBytes(100)).subarray(0, 20));
    const { job, result } = thread.follow(waiting, 'gzip');
    thread.cancel(job);
    await expect(result).rejects.toThrow('cancelled');
    expect((await thread.inspect(plain, 10)).format).toBe('none');
  });
});
