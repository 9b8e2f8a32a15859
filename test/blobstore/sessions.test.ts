import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobFiles } from '../../src/blobstore/files.js';
import { BlobService } from '../../src/blobstore/service.js';
import { UploadSessions } from '../../src/blobstore/uploads.js';
import { MetadataIndex } from '../../src/db/index.js';
import { parseDigest } from '../../src/digest.js';
import { TestClock } from '../helpers/clock.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('upload sessions', () => {
  let reg: TestRegistry | undefined;
  let keptDir: string | undefined;
  afterEach(async () => {
    await reg?.close();
    reg = undefined;
    if (keptDir) await rm(keptDir, { recursive: true, force: true });
    keptDir = undefined;
  });

  it('expire after the idle timeout, data and all', async () => {
    // The registry's clock says how much time passes; the purge looks every 50 ms.
    const clock = new TestClock();
    clock.set(Date.now());
    reg = await startRegistry({ uploads: { idleTimeout: '1h', purgeInterval: '50ms' } }, { clock: clock.now });
    const start = await fetch(`${reg.url}/v2/idle/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const id = start.headers.get('docker-upload-uuid')!;
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: Buffer.alloc(1000, 1) });
    expect(existsSync(join(reg.dataDir, 'uploads', id))).toBe(true);
    const purged = async () => {
      // Two purge intervals at least: one whole look at the sessions happened meanwhile.
      await sleep(150);
      return !existsSync(join(reg!.dataDir, 'uploads', id));
    };

    // A session in use stays alive...
    clock.set(clock.now() + 40 * 60_000);
    expect(await purged()).toBe(false);
    expect((await fetch(`${reg.url}${location}`)).status).toBe(204);
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: Buffer.alloc(10, 2) });
    // (70 minutes after it began, 30 after its last chunk)
    clock.set(clock.now() + 30 * 60_000);
    expect(await purged()).toBe(false);
    expect((await fetch(`${reg.url}${location}`)).headers.get('range')).toBe('0-1009');

    // ...and one left alone is purged.
    clock.set(clock.now() + 31 * 60_000);
    let gone = await fetch(`${reg.url}${location}`);
    // The status check alone refuses it; the purge removes its data.
    expect(gone.status).toBe(404);
    while (!(await purged()));
    gone = await fetch(`${reg.url}${location}`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(existsSync(join(reg.dataDir, 'uploads', id))).toBe(false);
  });

  it('startup removes upload files without a session and leftovers in tmp/', async () => {
    reg = await startRegistry({}, { keepData: true });
    const { dataDir } = reg;
    keptDir = dataDir;
    const start = await fetch(`${reg.url}/v2/keep/app/blobs/uploads/`, { method: 'POST' });
    const id = start.headers.get('docker-upload-uuid')!;
    await fetch(`${reg.url}${start.headers.get('location')}`, { method: 'PATCH', body: 'some data' });
    const empty = await fetch(`${reg.url}/v2/keep/app/blobs/uploads/`, { method: 'POST' });
    await reg.close();

    await writeFile(join(dataDir, 'uploads', 'orphan'), 'partial');
    await writeFile(join(dataDir, 'tmp', 'half-received'), 'partial');
    reg = await startRegistry({}, { dataDir });
    expect(await readdir(join(dataDir, 'uploads'))).toEqual([id]);
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
    expect((await fetch(`${reg.url}/v2/keep/app/blobs/uploads/${id}`)).headers.get('range')).toBe('0-8');
    // A session that never received data has no file, and survives as an empty session.
    const emptyStatus = await fetch(`${reg.url}${empty.headers.get('location')}`);
    expect(emptyStatus.status).toBe(204);
    expect(emptyStatus.headers.get('range')).toBe('0-0');
  });

  it('rebuild a running hash the writer thread lost from the data file', async () => {
    keptDir = await mkdtemp(join(tmpdir(), 'berth-sessions-'));
    const files = new BlobFiles(keptDir, true);
    await files.init();
    const index = new MetadataIndex(join(keptDir, 'index.db'), { durable: true });
    try {
      const uploads = new UploadSessions(files, index, new BlobService(files, index), 60_000);
      const first = randomBytes(300_000);
      const second = randomBytes(200_000);
      const all = Buffer.concat([first, second]); // before the chunks move to the thread
      const id = await uploads.create('lost/app');
      expect(await uploads.append('lost/app', id, Readable.from([first]), undefined)).toBe(300_000);

      // The thread dies between two chunks, taking the session's running hash with it.
      await (files.writer as unknown as { worker: Worker }).worker.terminate();
      expect(await uploads.offset('lost/app', id)).toBe(300_000);
      expect(await uploads.append('lost/app', id, Readable.from([second]), { start: 300_000, end: 499_999 })).toBe(500_000);

      const digest = parseDigest(`sha256:${createHash('sha256').update(all).digest('hex')}`);
      expect(await uploads.complete('lost/app', id, digest, undefined, undefined)).toBe(500_000);
      expect((await readFile(files.blobPath(digest))).equals(all)).toBe(true);
    } finally {
      await files.close();
      index.close();
    }
  });

  it('after a kill between a completion’s link into the store and its commit, the session resumes with all its bytes and never writes into the blob', async () => {
    reg = await startRegistry({}, { keepData: true });
    const { dataDir } = reg;
    keptDir = dataDir;
    const data = randomBytes(100_000);
    const start = await fetch(`${reg.url}/v2/half/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const id = start.headers.get('docker-upload-uuid')!;
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: data });
    await reg.close();

    // What a completion leaves when killed after publishing and before its commit: the
    // session's file linked into the store under the digest of what it holds.
    const digest = parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    const blob = join(dataDir, 'blobs', 'sha256', digest.hex.slice(0, 2), digest.hex);
    await mkdir(join(blob, '..'), { recursive: true });
    await link(join(dataDir, 'uploads', id), blob);

    reg = await startRegistry({}, { dataDir });
    expect((await fetch(`${reg.url}/v2/half/app/blobs/${digest.value}`, { method: 'HEAD' })).status).toBe(404);
    const status = await fetch(`${reg.url}${location}`);
    expect(status.headers.get('range')).toBe('0-99999');
    // The client goes on (say it had more to send): the bytes go to the session only.
    const more = randomBytes(5000);
    const patch = await fetch(`${reg.url}${location}`, { method: 'PATCH', body: more, headers: { 'Content-Range': '100000-104999' } });
    expect(patch.status).toBe(202);
    expect((await readFile(blob)).equals(data)).toBe(true);
    const all = Buffer.concat([data, more]);
    const whole = `sha256:${createHash('sha256').update(all).digest('hex')}`;
    expect((await fetch(`${reg.url}${location}?digest=${whole}`, { method: 'PUT' })).status).toBe(201);
    const got = await fetch(`${reg.url}/v2/half/app/blobs/${whole}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(all)).toBe(true);
    expect(await readdir(join(dataDir, 'uploads'))).toEqual([]);
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
  });

  it('the same, when the client simply retries the final PUT: the blob completes and the session ends', async () => {
    reg = await startRegistry({}, { keepData: true });
    const { dataDir } = reg;
    keptDir = dataDir;
    const data = randomBytes(50_000);
    const digest = parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    const start = await fetch(`${reg.url}/v2/half/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const id = start.headers.get('docker-upload-uuid')!;
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: data });
    await reg.close();
    const blob = join(dataDir, 'blobs', 'sha256', digest.hex.slice(0, 2), digest.hex);
    await mkdir(join(blob, '..'), { recursive: true });
    await link(join(dataDir, 'uploads', id), blob);

    reg = await startRegistry({}, { dataDir });
    expect((await fetch(`${reg.url}${location}?digest=${digest.value}`, { method: 'PUT' })).status).toBe(201);
    expect((await fetch(`${reg.url}${location}`)).status).toBe(404);
    const got = await fetch(`${reg.url}/v2/half/app/blobs/${digest.value}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
    expect((await stat(blob)).nlink).toBe(1);
    expect(await readdir(join(dataDir, 'uploads'))).toEqual([]);
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
  });

  it('a session whose data file vanished is ended, never reported as empty', async () => {
    reg = await startRegistry({}, { keepData: true });
    const { dataDir } = reg;
    keptDir = dataDir;
    const start = await fetch(`${reg.url}/v2/gone/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const id = start.headers.get('docker-upload-uuid')!;
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: randomBytes(4096) });
    await reg.close();
    await rm(join(dataDir, 'uploads', id));

    reg = await startRegistry({}, { dataDir });
    const status = await fetch(`${reg.url}${location}`);
    expect(status.status).toBe(404);
    const error = ((await status.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    expect(error.code).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(error.message).toContain('lost its data (4096 bytes received, 0 found)');
    expect((await fetch(`${reg.url}${location}`)).status).toBe(404);
  });
});
