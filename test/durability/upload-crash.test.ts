/**
 * Resumable uploads under kill -9: several clients push chunked uploads at once (PATCHes,
 * then a final PUT that sometimes carries the last chunk), the registry is killed at a
 * random instant, restarted, and every upload is checked: complete (blob served intact,
 * session gone) or resumable from at least the last offset a 202 confirmed, never both,
 * never neither, and nothing partial served. Then the clients resume where the registry
 * says and the next kill comes. CRASH_ROUNDS sets the number of kills (default 20).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { killHard, spawnRegistry, type RegistryProcess } from '../helpers/process.js';

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 20);
const CLIENTS = 6;
const MiB = 1024 * 1024;

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Upload {
  name: string;
  repo: string;
  blob: Buffer<ArrayBuffer>;
  digest: string;
  /** The session's URL path, once a POST was answered. */
  location?: string;
  /** The most bytes a 202 (or a status check after a restart) confirmed. */
  confirmed: number;
  /** A 201 was received, or the blob was found after a restart. */
  completed: boolean;
  /** The blob's bytes were read back and hashed once. */
  checked?: boolean;
}

/** Answers that confirmed bytes (202) or a blob (201), over the whole run. */
let confirmations = 0;

/** Requests that fail because the registry is gone end the client's turn. */
class RegistryGone extends Error {}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch {
    throw new RegistryGone();
  }
}

/** The session's size from its Range header (`0-0` is empty here: chunks are never a single byte). */
function rangeEnd(res: Response): number {
  const range = res.headers.get('range') ?? '';
  const match = /^0-(\d+)$/.exec(range);
  if (!match) throw new Error(`no Range in a ${res.status} answer`);
  return range === '0-0' ? 0 : Number(match[1]) + 1;
}

/** Pushes (or resumes) `upload` until it completes or the registry dies; protocol errors are violations. */
async function push(base: string, upload: Upload, violations: string[]): Promise<void> {
  if (upload.location === undefined) {
    const res = await request(`${base}/v2/${upload.repo}/blobs/uploads/`, { method: 'POST' });
    if (res.status !== 202) throw new Error(`${upload.name}: POST answered ${res.status}`);
    upload.location = new URL(res.headers.get('location')!, base).pathname;
  }
  const status = await request(`${base}${upload.location}`, {});
  if (status.status !== 204) throw new Error(`${upload.name}: status answered ${status.status}`);
  let offset = rangeEnd(status);
  if (offset < upload.confirmed) violations.push(`${upload.name}: status says ${offset} bytes while ${upload.confirmed} were confirmed`);
  while (true) {
    const left = upload.blob.length - offset;
    const chunk = Math.min(left, (1 + Math.floor(Math.random() * 8)) * 256 * 1024);
    // The last chunk goes with the PUT half of the time.
    if (chunk === left && Math.random() < 0.5) break;
    if (chunk === 0) break;
    const body = upload.blob.subarray(offset, offset + chunk);
    const res = await request(`${base}${upload.location}`, {
      method: 'PATCH',
      body,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk - 1}` },
    });
    if (res.status !== 202) throw new Error(`${upload.name}: PATCH at ${offset} answered ${res.status} ${await res.text()}`);
    const end = rangeEnd(res);
    if (end !== offset + chunk) violations.push(`${upload.name}: PATCH of ${offset}-${offset + chunk - 1} answered Range up to ${end}`);
    offset = end;
    upload.confirmed = Math.max(upload.confirmed, end);
    confirmations++;
  }
  const rest = upload.blob.subarray(offset);
  const res = await request(`${base}${upload.location}?digest=${upload.digest}`, {
    method: 'PUT',
    body: rest,
    headers: {
      'Content-Type': 'application/octet-stream',
      ...(rest.length > 0 && { 'Content-Range': `${offset}-${upload.blob.length - 1}` }),
    },
  });
  if (res.status !== 201) throw new Error(`${upload.name}: PUT answered ${res.status} ${await res.text()}`);
  upload.completed = true;
  confirmations++;
}

/** After a restart: the upload is complete or resumable from at least what was confirmed, exclusively. */
async function verify(base: string, upload: Upload, violations: string[]): Promise<void> {
  const blobUrl = `${base}/v2/${upload.repo}/blobs/${upload.digest}`;
  const head = await fetch(blobUrl, { method: 'HEAD' });
  const session = upload.location === undefined ? undefined : await fetch(`${base}${upload.location}`);
  const name = upload.name;
  if (head.status === 200) {
    if (!upload.checked) {
      const body = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
      if (sha256(body) !== upload.digest) violations.push(`${name}: the blob is served with ${body.length} wrong bytes`);
      upload.checked = true;
    }
    if (session?.status !== 404) violations.push(`${name}: the blob is there and its session too (${session?.status})`);
    upload.completed = true;
    return;
  }
  if (head.status !== 404) violations.push(`${name}: HEAD of the blob answered ${head.status}`);
  if (upload.completed) return void violations.push(`${name}: acknowledged with 201, the blob is gone`);
  if (session === undefined) return;
  if (session.status !== 204) return void violations.push(`${name}: neither the blob nor its session (${session.status}), ${upload.confirmed} bytes confirmed`);
  const offset = rangeEnd(session);
  if (offset < upload.confirmed) {
    violations.push(`${name}: resumable from ${offset} (Range ${session.headers.get('range')}) but ${upload.confirmed} bytes were confirmed`);
  }
  if (offset > upload.blob.length) violations.push(`${name}: the session holds ${offset} bytes of ${upload.blob.length}`);
}

describe('kill -9 during resumable uploads', () => {
  let dataDir: string | undefined;
  let registry: RegistryProcess | undefined;
  afterAll(async () => {
    if (registry) await killHard(registry);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`every upload is complete or resumable from its last confirmed offset after each of ${ROUNDS} kills`, { timeout: 300_000 + ROUNDS * 60_000 }, async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-upload-crash-'));
    const violations: string[] = [];
    const uploads: Upload[] = [];
    let created = 0;
    const fresh = (): Upload => {
      const blob = randomBytes(MiB + Math.floor(Math.random() * 7 * MiB));
      const n = created++;
      return { name: `upload ${n}`, repo: `crash/c${n % CLIENTS}`, blob, digest: sha256(blob), confirmed: 0, completed: false };
    };
    let killedMidUpload = 0;

    for (let round = 0; round <= ROUNDS; round++) {
      registry = await spawnRegistry(dataDir);
      const base = registry.url;
      for (const upload of uploads) await verify(base, upload, violations);
      expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
      if (round === ROUNDS) {
        // The last start: every upload still open is resumed to the end.
        for (const upload of uploads.filter((u) => !u.completed)) await push(base, upload, violations);
        for (const upload of uploads) await verify(base, upload, violations);
        break;
      }
      // Clients resume what is open, then start new uploads, until the kill.
      const open = uploads.filter((u) => !u.completed);
      const confirmedBefore = confirmations;
      let running = CLIENTS;
      const client = async () => {
        try {
          while (true) {
            const upload = open.shift() ?? fresh();
            if (!uploads.includes(upload)) uploads.push(upload);
            await push(base, upload, violations);
          }
        } catch (err) {
          if (!(err instanceof RegistryGone)) violations.push(String((err as Error).message));
        } finally {
          running--;
        }
      };
      const clients = Array.from({ length: CLIENTS }, client);
      // The kill comes at a random instant after the round's first confirmed bytes (so a
      // loaded machine does not turn every round into a kill before anything happened).
      while (confirmations === confirmedBefore && running > 0) await sleep(10);
      await sleep(Math.random() * 1200);
      await killHard(registry);
      registry = undefined;
      await Promise.all(clients);
      killedMidUpload += uploads.filter((u) => !u.completed && u.location !== undefined).length;
    }
    expect(violations).toEqual([]);
    // The run did what it claims: kills caught uploads open, and every upload completed in the end.
    expect(killedMidUpload).toBeGreaterThan(0);
    expect(uploads.every((u) => u.completed)).toBe(true);

    registry!.child.kill('SIGTERM');
    await registry!.exited;
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });
});
