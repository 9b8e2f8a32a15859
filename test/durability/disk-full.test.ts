/**
 * A real full file system: the registry runs on a small tmpfs mounted for the test, and
 * the test fills it. Every write then answers 507 STORAGE_FULL with the error body, no
 * partial blob or temporary file remains, an upload session keeps every byte it had
 * confirmed, /readyz leaves no probe file behind, and all works again once space is freed.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rm, rmdir, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { call, descriptor, MT, pushBlob, randomBlob, sha256, type Res } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;

/** Mounts a tmpfs of `size` bytes on a fresh directory; undefined (with the reason) where mounting is not allowed. */
function mountTmpfs(dir: string, size: number): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? err).trim();
  }
}

/** Appends to `file` until the file system refuses more; returns the bytes written. */
async function fill(file: string): Promise<number> {
  const handle = await open(file, 'a');
  const chunk = Buffer.alloc(256 * 1024, 7);
  let written = 0;
  try {
    for (;;) {
      try {
        written += (await handle.write(chunk)).bytesWritten;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        // The last bytes a partial page still takes.
        for (const size of [65536, 4096, 512, 1]) {
          try {
            for (;;) written += (await handle.write(chunk.subarray(0, size))).bytesWritten;
          } catch {
            // next smaller size
          }
        }
        return written;
      }
    }
  } finally {
    await handle.close();
  }
}

function expectFull(res: Res, label: string): void {
  expect(res.status, `${label}: ${res.text}`).toBe(507);
  const error = res.json().errors[0];
  expect(error.code).toBe('STORAGE_FULL');
  expect(error.message).toContain('storage is full');
}

const mountPoint = await mkdtemp(join(tmpdir(), 'berth-full-'));
const refused = mountTmpfs(mountPoint, 24 * MiB);

describe.skipIf(refused !== undefined)(`a full disk${refused ? ` (skipped: cannot mount a tmpfs: ${refused})` : ''}`, () => {
  let reg: TestRegistry | undefined;
  const dataDir = join(mountPoint, 'data');
  const filler = join(mountPoint, 'filler');

  beforeAll(async () => {
    reg = await startRegistry({ health: { minFreeBytes: 0 } }, { dataDir });
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('answers 507 STORAGE_FULL, keeps what was confirmed, leaves nothing partial, and recovers when space is freed', async () => {
    const { url } = reg!;
    const repo = 'full/app';
    // Before: an image and an upload session with 1 MiB confirmed.
    const layer = randomBlob(64 * 1024);
    await pushBlob(url, repo, layer);
    const session = await call(url, 'POST', `/v2/${repo}/blobs/uploads/`);
    expect(session.status).toBe(202);
    const location = session.headers.get('location')!;
    const data = randomBytes(3 * MiB);
    const first = await call(url, 'PATCH', location, { body: data.subarray(0, MiB), headers: { 'content-range': `0-${MiB - 1}` } });
    expect(first.status).toBe(202);

    // The disk fills up, 256 KiB short of full: the next chunk fails halfway.
    const size = await fill(filler);
    await truncate(filler, size - 256 * 1024);
    const second = await call(url, 'PATCH', location, {
      body: data.subarray(MiB, 3 * MiB),
      headers: { 'content-range': `${MiB}-${3 * MiB - 1}` },
    }).catch((err: Error) => err);
    // The refusal may come while the body is still on its way; then the client sees the connection end.
    if (!(second instanceof Error)) expectFull(second, 'PATCH');
    const status = await call(url, 'GET', location);
    expect(status.status).toBe(204);
    const held = Number(/^0-(\d+)$/.exec(status.headers.get('range')!)![1]) + 1;
    expect(held).toBeGreaterThanOrEqual(MiB);
    expect(held).toBeLessThan(3 * MiB);

    // A monolithic upload and a chunked one's final PUT: 507, nothing stored, nothing left in tmp/.
    const blob = randomBlob(2 * MiB);
    const monolithic = await call(url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { body: blob }).catch((err: Error) => err);
    if (!(monolithic instanceof Error)) expectFull(monolithic, 'monolithic upload');
    expect((await call(url, 'HEAD', `/v2/${repo}/blobs/${sha256(blob)}`)).status).toBe(404);
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);

    // Completely full now.
    await fill(filler);
    const ready = await call(url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json().checks.storage).toEqual({ ok: false, error: 'ENOSPC' });
    for (let i = 0; i < 3; i++) await call(url, 'GET', '/readyz');
    expect((await readdir(dataDir)).filter((name) => name.startsWith('.readyz'))).toEqual([]);

    // Index writes (new sessions, manifests) answer 201/202 while SQLite has room in its
    // log, and 507 once it has none: never a 500, never half a manifest.
    // An image config listing no diff_ids: accepted as unverifiable, so the layer's bytes need not be a real tar.
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const answers = new Set<number>();
    for (let i = 0; i < 300 && !answers.has(507); i++) {
      const res = await call(url, 'POST', `/v2/${repo}/blobs/uploads/`);
      answers.add(res.status);
      if (res.status !== 202) expectFull(res, 'POST session');
    }
    expect(answers.has(507)).toBe(true);
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)] }),
    );
    const configPush = await call(url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(config)}`, { body: config });
    expectFull(configPush, 'config blob');
    const manifestPush = await call(url, 'PUT', `/v2/${repo}/manifests/v1`, { body: manifest, headers: { 'content-type': MT.ociManifest } });
    // The config blob could not be stored, so the manifest is refused either way, cleanly.
    expect([400, 507]).toContain(manifestPush.status);
    expect((await call(url, 'GET', `/v2/${repo}/manifests/v1`)).status).toBe(404);

    // Space comes back: the session resumes from what it holds, and everything works.
    await rm(filler);
    const again = await call(url, 'GET', location);
    const offset = Number(/^0-(\d+)$/.exec(again.headers.get('range')!)![1]) + 1;
    expect(offset).toBe(held);
    const rest = await call(url, 'PATCH', location, {
      body: data.subarray(offset),
      headers: { 'content-range': `${offset}-${data.length - 1}` },
    });
    expect(rest.status).toBe(202);
    expect((await call(url, 'PUT', `${location}?digest=${sha256(data)}`)).status).toBe(201);
    const got = await call(url, 'GET', `/v2/${repo}/blobs/${sha256(data)}`);
    expect(createHash('sha256').update(got.body).digest('hex')).toBe(sha256(data).slice(7));
    await pushBlob(url, repo, config);
    expect((await call(url, 'PUT', `/v2/${repo}/manifests/v1`, { body: manifest, headers: { 'content-type': MT.ociManifest } })).status).toBe(201);
    expect((await call(url, 'GET', '/readyz')).status).toBe(200);

    await reg!.close();
    reg = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });
});

afterAll(async () => {
  if (refused === undefined) {
    try {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    }
  }
  await rmdir(mountPoint);
});
