import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
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
    reg = await startRegistry({ uploads: { idleTimeout: '1s', purgeInterval: '200ms' } });
    const start = await fetch(`${reg.url}/v2/idle/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const id = start.headers.get('docker-upload-uuid')!;
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: Buffer.alloc(1000, 1) });
    expect(existsSync(join(reg.dataDir, 'uploads', id))).toBe(true);

    // A session in use stays alive...
    await sleep(600);
    expect((await fetch(`${reg.url}${location}`)).status).toBe(204);
    await fetch(`${reg.url}${location}`, { method: 'PATCH', body: Buffer.alloc(10, 2) });
    await sleep(600);
    expect((await fetch(`${reg.url}${location}`)).headers.get('range')).toBe('0-1009');

    // ...and one left alone is purged.
    await sleep(1600);
    const gone = await fetch(`${reg.url}${location}`);
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
});
