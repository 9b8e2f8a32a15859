import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { killHard, spawnRegistry, type RegistryProcess } from '../helpers/process.js';

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Acknowledged {
  repo: string;
  digest: string;
  kind: 'blob' | 'manifest';
  tag?: string;
}

/** A tag push that was under way when the registry died: it may or may not have landed. */
interface InFlight {
  repo: string;
  tag: string;
  digest: string;
}

/** Pushes in several styles until the registry dies, recording every push it acknowledged. */
async function pushUntilKilled(url: string, worker: number, acked: Acknowledged[], inFlight: InFlight[]): Promise<void> {
  const repo = `crash/w${worker}`;
  const layers: { digest: string; size: number }[] = [];
  try {
    for (let round = 0; ; round++) {
      const blob = randomBytes(64 * 1024 + Math.floor(Math.random() * 1024 * 1024));
      const digest = sha256(blob);
      if (round % 2 === 0) {
        const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
        if (res.status !== 201) throw new Error(`monolithic push answered ${res.status}`);
      } else {
        let res = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
        let location = res.headers.get('location')!;
        const third = Math.ceil(blob.length / 3);
        for (let start = 0; start < blob.length; start += third) {
          const chunk = blob.subarray(start, start + third);
          res = await fetch(`${url}${location}`, {
            method: 'PATCH',
            body: chunk,
            headers: { 'Content-Range': `${start}-${start + chunk.length - 1}` },
          });
          if (res.status !== 202) throw new Error(`PATCH answered ${res.status}`);
          location = res.headers.get('location')!;
        }
        res = await fetch(`${url}${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
        if (res.status !== 201) throw new Error(`PUT answered ${res.status}`);
      }
      acked.push({ repo, digest, kind: 'blob' });
      layers.push({ digest, size: blob.length });

      // Uncompressed layers: their diff_ids are their digests.
      const diffIds = layers.slice(-3).map((l) => l.digest);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', round, worker, rootfs: { type: 'layers', diff_ids: diffIds } }));
      const configDigest = sha256(config);
      const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${configDigest}`, { method: 'POST', body: config });
      if (res.status !== 201) throw new Error(`config push answered ${res.status}`);
      acked.push({ repo, digest: configDigest, kind: 'blob' });
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
          layers: layers.slice(-3).map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
        }),
      );
      const tag = `r${round % 4}`;
      const attempt = { repo, tag, digest: sha256(manifest) };
      inFlight.push(attempt);
      const put = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
        method: 'PUT',
        body: manifest,
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      if (put.status !== 201) throw new Error(`manifest push answered ${put.status}`);
      // Acknowledged: this push supersedes every earlier one of the tag, landed or not.
      for (let i = inFlight.length - 1; i >= 0; i--) {
        if (inFlight[i]!.repo === repo && inFlight[i]!.tag === tag) inFlight.splice(i, 1);
      }
      for (const earlier of acked) if (earlier.repo === repo && earlier.tag === tag) delete earlier.tag;
      acked.push({ repo, digest: sha256(manifest), kind: 'manifest', tag });
    }
  } catch {
    // The registry was killed: whatever was acknowledged is recorded.
  }
}

/** A large upload that is still streaming when the registry dies. */
function streamForever(url: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(`${url}/v2/crash/big/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, { method: 'POST' });
    req.on('error', () => resolve());
    req.on('response', () => resolve());
    const chunk = randomBytes(256 * 1024);
    const pump = () => {
      if (req.destroyed) return resolve();
      req.write(chunk, () => setImmediate(pump));
    };
    pump();
  });
}

describe('kill -9 during concurrent pushes', () => {
  let dataDir: string;
  let registry: RegistryProcess | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-kill-'));
  });
  afterAll(async () => {
    if (registry) await killHard(registry);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged push and never exposes partial or unverified data', async () => {
    const acked: Acknowledged[] = [];
    const inFlight: InFlight[] = [];
    for (const killAfterMs of [700, 1300, 400]) {
      registry = await spawnRegistry(dataDir);
      const url = registry.url;
      const manifests = () => acked.filter((a) => a.kind === 'manifest').length;
      const before = manifests();
      const workers = [0, 1, 2, 3, 4].map((w) => pushUntilKilled(url, w, acked, inFlight));
      const big = streamForever(url);
      // Each kill comes after the round acknowledged an image, however slow the machine.
      while (manifests() === before) await sleep(20);
      await sleep(killAfterMs);
      await killHard(registry);
      await Promise.all([...workers, big]);
    }
    expect(acked.filter((a) => a.kind === 'manifest').length).toBeGreaterThan(0);

    // Restart: everything acknowledged is served intact, nothing unverified is visible.
    registry = await spawnRegistry(dataDir);
    for (const a of acked) {
      const res = await fetch(`${registry.url}/v2/${a.repo}/${a.kind === 'blob' ? 'blobs' : 'manifests'}/${a.digest}`);
      expect(res.status, `${a.kind} ${a.digest}`).toBe(200);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(a.digest);
      if (a.tag) {
        const byTag = await fetch(`${registry.url}/v2/${a.repo}/manifests/${a.tag}`, { method: 'HEAD' });
        const pending = inFlight.filter((p) => p.repo === a.repo && p.tag === a.tag).map((p) => p.digest);
        expect([a.digest, ...pending]).toContain(byTag.headers.get('docker-content-digest'));
      }
    }
    const bogus = await fetch(`${registry.url}/v2/crash/big/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' });
    expect(bogus.status).toBe(404);
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
    registry.child.kill('SIGTERM');
    await registry.exited;
    registry = undefined;

    const { problems, blobFiles } = await checkConsistency(dataDir);
    expect(problems).toEqual([]);
    expect(blobFiles).toBeGreaterThanOrEqual(new Set(acked.filter((a) => a.kind === 'blob').map((a) => a.digest)).size);
  });

  it('resumes an upload session after a kill -9', async () => {
    registry = await spawnRegistry(dataDir);
    const blob = randomBytes(3 * 1024 * 1024);
    const start = await fetch(`${registry.url}/v2/crash/resume/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const first = await fetch(`${registry.url}${location}`, { method: 'PATCH', body: blob.subarray(0, 1024 * 1024) });
    expect(first.headers.get('range')).toBe(`0-${1024 * 1024 - 1}`);
    await killHard(registry);

    registry = await spawnRegistry(dataDir);
    const status = await fetch(`${registry.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${1024 * 1024 - 1}`);
    const rest = await fetch(`${registry.url}${location}`, {
      method: 'PATCH',
      body: blob.subarray(1024 * 1024),
      headers: { 'Content-Range': `${1024 * 1024}-${blob.length - 1}` },
    });
    expect(rest.status).toBe(202);
    const done = await fetch(`${registry.url}${location}?digest=${sha256(blob)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const got = await fetch(`${registry.url}/v2/crash/resume/blobs/${sha256(blob)}`);
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(blob));
    await killHard(registry);
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });
});
