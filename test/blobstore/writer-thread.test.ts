import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WriterThread } from '../../src/blobstore/writer-thread.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('writer thread', () => {
  let dir: string;
  let writer: WriterThread;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-writer-'));
    writer = new WriterThread();
  });
  afterEach(async () => {
    await writer.terminate();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes and hashes the parts in order; a part owning its memory moves, any other is copied', async () => {
    const owned = randomBytes(100_000); // large enough to own its memory
    const pool = Buffer.from('pooled'); // shares Node's buffer pool
    const backing = randomBytes(5000);
    const slice = backing.subarray(10, 2010);
    const expected = Buffer.concat([owned, pool, slice, Buffer.from('pooled')]);

    const path = join(dir, 'blob');
    const hash = writer.newHash('sha256');
    const job = writer.open(path, 'w', hash, true);
    const first = writer.write(job, [owned, pool]);
    const second = writer.write(job, [slice]);
    expect(await first).toBe(100_006);
    expect(await second).toBe(2000);
    expect(owned.length).toBe(0); // moved to the thread, detached here
    expect(pool.toString()).toBe('pooled');
    expect(slice.equals(backing.subarray(10, 2010))).toBe(true);
    expect(await writer.write(job, [pool])).toBe(6);
    await writer.close(job, true);

    expect((await readFile(path)).equals(expected)).toBe(true);
    expect(await writer.digest(hash)).toBe(sha256(expected));
    expect(writer.holds(hash)).toBe(false);
  });

  it('resumes a hash from an existing file and appends to it', async () => {
    const path = join(dir, 'upload');
    const start = randomBytes(3 * 1024 * 1024 + 5);
    const more = randomBytes(70_000);
    await writeFile(path, start);

    const hash = writer.newHash('sha256');
    expect(await writer.hashFile(hash, path)).toBe(start.length);
    const job = writer.open(path, 'a', hash, false);
    await writer.write(job, [Buffer.from(more)]);
    await writer.close(job, false);

    const all = Buffer.concat([start, more]);
    expect((await readFile(path)).equals(all)).toBe(true);
    expect(await writer.digest(hash)).toBe(sha256(all));
  });

  it('gives the digest with the close when asked, and the hash is used up on both sides', async () => {
    const bytes = randomBytes(300_000);
    const expected = sha256(bytes); // before the bytes move to the thread
    const hash = writer.newHash('sha256');
    const job = writer.open(join(dir, 'closed'), 'w', hash, true);
    await writer.write(job, [bytes]);
    expect(await writer.close(job, true, hash)).toBe(expected);
    expect(writer.holds(hash)).toBe(false);
    await expect(writer.digest(hash)).rejects.toThrow(/unknown hash/);

    // A close that fails forgets the hash all the same.
    const failing = writer.newHash('sha256');
    const broken = writer.open(join(dir, 'missing', 'blob'), 'w', failing, true);
    await expect(writer.close(broken, true, failing)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(writer.holds(failing)).toBe(false);
    await expect(writer.digest(failing)).rejects.toThrow(/unknown hash/);
  });

  it('digests a whole file, and reports one that cannot be read', async () => {
    const path = join(dir, 'whole');
    const bytes = randomBytes(2 * 1024 * 1024 + 3);
    await writeFile(path, bytes);
    expect(await writer.fileDigest(path, 'sha512')).toEqual({
      hex: createHash('sha512').update(bytes).digest('hex'),
      size: bytes.length,
    });
    await expect(writer.fileDigest(join(dir, 'absent'), 'sha256')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports a file that cannot be opened on the job’s writes and close, and an unknown hash', async () => {
    const hash = writer.newHash('sha256');
    const job = writer.open(join(dir, 'missing', 'blob'), 'w', hash, true);
    await expect(writer.write(job, [Buffer.from('x')])).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(writer.close(job, true)).rejects.toMatchObject({ code: 'ENOENT' });

    writer.drop(hash);
    const other = writer.open(join(dir, 'blob'), 'w', hash, true);
    await expect(writer.write(other, [Buffer.from('x')])).rejects.toThrow(/unknown hash/);
    await expect(writer.close(other, false)).rejects.toThrow(/unknown hash/);
  });

  it('when the thread dies, fails what waits, forgets its hashes and starts a new thread', async () => {
    const lost = writer.newHash('sha256');
    await writer.digest(writer.newHash('sha256')); // the thread is running
    const job = writer.open(join(dir, 'blob'), 'w', lost, false);
    const waiting = writer.write(job, [randomBytes(64 * 1024 * 1024)]);
    // A crash, as far as the main thread can tell.
    await (writer as unknown as { worker: Worker }).worker.terminate();

    await expect(waiting).rejects.toThrow(/exited/);
    expect(writer.holds(lost)).toBe(false);
    const fresh = writer.newHash('sha256');
    const path = join(dir, 'after');
    const next = writer.open(path, 'w', fresh, false);
    await writer.write(next, [Buffer.from('still works')]);
    await writer.close(next, false);
    expect(await writer.digest(fresh)).toBe(sha256(Buffer.from('still works')));
  });
});
