import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { call, descriptor, expectError, hexOf, MT, pushBlob, pushManifest, randomBlob, sha256, uniq } from '../helpers/oci.js';
import { HOUR, TestClock } from '../helpers/clock.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { expectPulls, gc, pushImageWith, pushIndex, usage, type Image } from './helpers.js';

/**
 * The grace period: long enough that nothing a test pushes ever outgrows it on its own,
 * however slow the machine. A test makes things old by setting the registry's clock.
 */
const GRACE = '1h';
/** Past the grace period of everything pushed so far. */
const PAST_GRACE = 2 * HOUR;

function blobFile(dataDir: string, digest: string): string {
  const hex = hexOf(digest);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Sum of the sizes of distinct buffers. */
function bytesOf(buffers: Buffer[]): number {
  const seen = new Map<string, number>();
  for (const b of buffers) seen.set(sha256(b), b.length);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

describe('garbage collection', () => {
  let registry: TestRegistry | undefined;
  let dataDirs: string[] = [];
  let clock: TestClock;
  afterEach(async () => {
    await registry?.close();
    registry = undefined;
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
    dataDirs = [];
  });

  async function start(gcConfig: Record<string, unknown> = {}, storage: Record<string, unknown> = {}) {
    clock = new TestClock();
    registry = await startRegistry(
      { gc: { interval: 0, gracePeriod: GRACE, ...gcConfig }, storage: { fsync: false, ...storage } },
      { keepData: true, clock: clock.now },
    );
    dataDirs.push(registry.dataDir);
    return registry;
  }

  it('collects an unreferenced blob only after the grace period, with its links', async () => {
    const { url, dataDir } = await start();
    const repo = uniq('lone/');
    const blob = randomBlob(3000);
    const digest = await pushBlob(url, repo, blob);

    let report = await gc(url);
    expect(report.blobs.count).toBe(0);
    expect(existsSync(blobFile(dataDir, digest))).toBe(true);
    expect((await call(url, 'HEAD', `/v2/${repo}/blobs/${digest}`)).status).toBe(200);

    clock.later(PAST_GRACE);
    const plan = await gc(url, true);
    expect(plan).toMatchObject({ dryRun: true, blobs: { count: 1, bytes: 3000 }, files: { count: 1, bytes: 3000 }, reclaimedBytes: 3000 });
    expect(existsSync(blobFile(dataDir, digest))).toBe(true);

    report = await gc(url);
    expect(report).toMatchObject({ dryRun: false, blobs: { count: 1, bytes: 3000 }, files: { count: 1 }, reclaimedBytes: 3000 });
    expect(existsSync(blobFile(dataDir, digest))).toBe(false);
    expectError(await call(url, 'GET', `/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    await registry!.close();
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });

  it('keeps a blob re-uploaded within the grace period even though its row is older', async () => {
    const { url } = await start();
    const repo = uniq('reup/');
    const layer = randomBlob(2000);
    await pushBlob(url, repo, layer);
    const pushed = Date.now();
    await sleep(100);
    const rePushed = Date.now();
    // The client uploads it again (the row stays as it was, the file is re-published)…
    await pushBlob(url, repo, layer);
    // …and a collection runs when the row is past the grace period and the new file is not.
    clock.set((pushed + rePushed) / 2 + HOUR);
    expect((await gc(url)).blobs.count).toBe(0);
    // …and can still reference it.
    const image = await pushImageWith(url, repo, 'v1', [layer], { unique: 0 });
    await expectPulls(url, repo, image.digest);
  });

  it('never collects what a manifest references, and collects a deleted manifest’s blobs but not shared ones', async () => {
    const { url, dataDir } = await start();
    const repo = uniq('del/');
    const shared = randomBlob(5000);
    const keep = await pushImageWith(url, repo, 'keep', [shared]);
    const drop = await pushImageWith(url, repo, 'drop', [shared]);
    clock.later(PAST_GRACE);
    expect((await gc(url)).blobs.count).toBe(0);

    expect((await call(url, 'DELETE', `/v2/${repo}/manifests/${drop.digest}`)).status).toBe(202);
    const report = await gc(url);
    // The dropped image's config and unique layer; the shared layer stays.
    expect(report.blobs.count).toBe(2);
    expect(report.reclaimedBytes).toBe(bytesOf([drop.config, drop.layers[1]!]));
    expect(existsSync(blobFile(dataDir, sha256(shared)))).toBe(true);
    await expectPulls(url, repo, 'keep');
    await expectPulls(url, repo, keep.digest);
  });

  it('re-pushing a tag 10 times: the untagged policy removes the 9 old manifests and their unique layers, exactly as predicted', async () => {
    const { url, dataDir } = await start({ untaggedAfter: 0 });
    const repo = uniq('app/');
    const other = uniq('other/');
    const base = [randomBlob(20_000), randomBlob(10_000)];
    // Another repository shares the base layers.
    await pushImageWith(url, other, 'v1', base);

    const pushes: Image[] = [];
    for (let i = 0; i < 10; i++) pushes.push(await pushImageWith(url, repo, 'latest', base));
    // A multi-arch image: children by digest (never tagged), the index tagged.
    const amd = await pushImageWith(url, repo, undefined, base);
    const arm = await pushImageWith(url, repo, undefined, base);
    const multi = await pushIndex(url, repo, 'multi', [amd, arm]);
    // A signature of the current `latest` (kept: its subject is kept) and one of an old push (goes).
    const signature = async (subject: (typeof pushes)[number]) => {
      const payload = randomBlob(300);
      await pushBlob(url, repo, payload);
      await pushBlob(url, repo, '{}');
      return pushManifest(
        url,
        repo,
        undefined,
        {
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          artifactType: 'application/vnd.example.signature',
          config: descriptor(MT.ociEmpty, '{}'),
          layers: [descriptor('application/vnd.example.signature.v1', payload)],
          subject: { mediaType: MT.ociManifest, digest: subject.digest, size: subject.bytes.length },
        },
        MT.ociManifest,
      ).then((pushed) => ({ ...pushed, payload }));
    };
    const currentSignature = await signature(pushes[9]!);
    const oldSignature = await signature(pushes[0]!);

    const old = pushes.slice(0, 9);
    const expected = bytesOf([...old.flatMap((p) => [p.config, p.layers[2]!]), oldSignature.payload]);

    clock.later(PAST_GRACE);
    const before = await usage(url);
    const plan = await gc(url, true);
    expect(plan.manifests).toHaveLength(10);
    expect(new Set(plan.manifests.map((m: { digest: string }) => m.digest))).toEqual(
      new Set([...old.map((p) => p.digest), oldSignature.digest]),
    );
    expect(plan.manifests.every((m: { reason: string }) => m.reason === 'untagged')).toBe(true);
    expect(plan.reclaimedBytes).toBe(expected);
    expect(before.totals.reclaimableBytes).toBe(expected);
    // The dry run removed nothing.
    for (const p of old) expect((await call(url, 'HEAD', `/v2/${repo}/manifests/${p.digest}`)).status).toBe(200);

    const report = await gc(url);
    expect(report.reclaimedBytes).toBe(plan.reclaimedBytes);
    expect(report.manifests).toEqual(plan.manifests);
    expect(report.blobs).toEqual(plan.blobs);

    for (const p of old) {
      expectError(await call(url, 'GET', `/v2/${repo}/manifests/${p.digest}`), 404, 'MANIFEST_UNKNOWN');
      expect(existsSync(blobFile(dataDir, sha256(p.layers[2]!)))).toBe(false);
      expect(existsSync(blobFile(dataDir, sha256(p.config)))).toBe(false);
    }
    expectError(await call(url, 'GET', `/v2/${repo}/manifests/${oldSignature.digest}`), 404, 'MANIFEST_UNKNOWN');
    await expectPulls(url, repo, 'latest');
    await expectPulls(url, repo, 'multi');
    await expectPulls(url, repo, multi.digest);
    await expectPulls(url, repo, amd.digest);
    await expectPulls(url, repo, arm.digest);
    await expectPulls(url, repo, currentSignature.digest);
    await expectPulls(url, other, 'v1');
    const referrers = await call(url, 'GET', `/v2/${repo}/referrers/${pushes[9]!.digest}`);
    expect(referrers.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([currentSignature.digest]);

    const after = await usage(url);
    expect(after.totals.blobBytes).toBe(before.totals.blobBytes - expected);
    expect(after.totals.reclaimableBytes).toBe(0);
    // Nothing left to do.
    expect((await gc(url)).reclaimedBytes).toBe(0);
    await registry!.close();
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });

  it('keeps untagged manifests younger than the policy and, with the default policy, all of them', async () => {
    const { url } = await start({ untaggedAfter: '3h' });
    const repo = uniq('young/');
    const first = await pushImageWith(url, repo, 'x', []);
    await pushImageWith(url, repo, 'x', []);
    clock.later(PAST_GRACE);
    expect((await gc(url)).manifests).toEqual([]);
    await expectPulls(url, repo, first.digest);
  });

  it('without keepReferrers a referrer is an untagged manifest like any other', async () => {
    const { url } = await start({ untaggedAfter: 0, keepReferrers: false });
    const repo = uniq('refs/');
    const image = await pushImageWith(url, repo, 'v1', []);
    await pushBlob(url, repo, '{}');
    const sbom = await pushManifest(
      url,
      repo,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: 'application/spdx+json',
        config: descriptor(MT.ociEmpty, '{}'),
        layers: [descriptor(MT.ociEmpty, '{}')],
        subject: { mediaType: MT.ociManifest, digest: image.digest, size: image.bytes.length },
      },
      MT.ociManifest,
    );
    clock.later(PAST_GRACE);
    const report = await gc(url);
    expect(report.manifests.map((m: { digest: string }) => m.digest)).toEqual([sbom.digest]);
    await expectPulls(url, repo, 'v1');
  });

  it('applies retention rules per repository glob: dry run lists, the run removes tags and their manifests', async () => {
    const { url, dataDir } = await start({
      retention: [{ repositories: 'ci/**', keepLast: 2, keepTags: 'v\\d+\\.\\d+\\.\\d+' }],
    });
    const repo = `ci/${uniq('app')}`;
    const untouched = uniq('team/');
    const pushed: Record<string, Awaited<ReturnType<typeof pushImageWith>>> = {};
    for (const tag of ['v1.0.0', 'build-1', 'build-2', 'v1.1.0', 'build-3', 'build-4', 'build-5', 'build-6']) {
      pushed[tag] = await pushImageWith(url, repo, tag, []);
      await pushImageWith(url, untouched, tag, []);
      await sleep(3);
    }
    // build-2's manifest also carries a release tag: it loses build-2 but stays.
    const res = await call(url, 'PUT', `/v2/${repo}/manifests/v0.9.0`, {
      headers: { 'content-type': MT.ociManifest },
      body: pushed['build-2']!.bytes,
    });
    expect(res.status).toBe(201);
    await sleep(3);
    // Re-push of an old tag makes it recent again.
    await call(url, 'PUT', `/v2/${repo}/manifests/build-1`, { headers: { 'content-type': MT.ociManifest }, body: pushed['build-1']!.bytes });

    const plan = await gc(url, true);
    const planned = plan.tags.map((t: { tag: string }) => t.tag).sort();
    expect(planned).toEqual(['build-2', 'build-3', 'build-4', 'build-5']);
    expect(plan.tags.every((t: { repository: string }) => t.repository === repo)).toBe(true);
    expect(new Set(plan.manifests.map((m: { digest: string }) => m.digest))).toEqual(
      new Set(['build-3', 'build-4', 'build-5'].map((t) => pushed[t]!.digest)),
    );
    expect(plan.manifests.every((m: { reason: string }) => m.reason === 'retention')).toBe(true);
    const tagsOf = async (name: string) => (await call(url, 'GET', `/v2/${name}/tags/list`)).json().tags as string[];
    expect(await tagsOf(repo)).toHaveLength(9);

    // The blobs of the removed images are younger than the grace period: they stay for now.
    const report = await gc(url);
    expect(report.tags).toEqual(plan.tags);
    expect(report.manifests).toEqual(plan.manifests);
    expect(report.blobs.count).toBe(0);
    expect((await tagsOf(repo)).sort()).toEqual(['build-1', 'build-6', 'v0.9.0', 'v1.0.0', 'v1.1.0']);
    expect(await tagsOf(untouched)).toHaveLength(8);
    for (const tag of ['build-3', 'build-4', 'build-5']) {
      expectError(await call(url, 'GET', `/v2/${repo}/manifests/${pushed[tag]!.digest}`), 404, 'MANIFEST_UNKNOWN');
    }
    await expectPulls(url, repo, 'v0.9.0');
    await expectPulls(url, repo, 'build-1');

    clock.later(PAST_GRACE);
    const later = await gc(url);
    expect(later.tags).toEqual([]);
    expect(later.reclaimedBytes).toBe(bytesOf(['build-3', 'build-4', 'build-5'].flatMap((t) => [pushed[t]!.config, ...pushed[t]!.layers])));
    await registry!.close();
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });

  it('removes orphan files older than the grace period and settles files a crashed run left in trash/', async () => {
    const { url, dataDir } = await start();
    const repo = uniq('orphans/');
    const orphanOld = randomBlob(700);
    const orphanNew = randomBlob(800);
    const old = new Date(Date.now() - 3 * HOUR);
    for (const bytes of [orphanOld, orphanNew]) {
      const path = blobFile(dataDir, sha256(bytes));
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, bytes);
      // The new one stays within the grace period however long the pushes below take.
      const mtime = bytes === orphanOld ? old : new Date(Date.now() + 3_600_000);
      await utimes(path, mtime, mtime);
    }
    // A crashed run moved a blob that still has its row to trash/ (and one that has none).
    const needed = randomBlob(900);
    const neededDigest = await pushBlob(url, repo, needed);
    const image = await pushImageWith(url, repo, 'v1', [needed], { unique: 0 });
    const trash = join(dataDir, 'trash');
    await mkdir(trash, { recursive: true });
    const trashed = join(trash, `sha256-${hexOf(neededDigest)}-00000000-0000-4000-8000-000000000000`);
    await rename(blobFile(dataDir, neededDigest), trashed);
    await utimes(trashed, old, old);
    const garbage = randomBlob(100);
    await writeFile(join(trash, `sha256-${hexOf(sha256(garbage))}-00000000-0000-4000-8000-000000000001`), garbage);

    const plan = await gc(url, true);
    expect(plan.files).toEqual({ count: 1, bytes: 700 });
    const report = await gc(url);
    expect(report.files).toEqual({ count: 1, bytes: 700 });
    expect(existsSync(blobFile(dataDir, sha256(orphanOld)))).toBe(false);
    expect(existsSync(blobFile(dataDir, sha256(orphanNew)))).toBe(true);
    expect(existsSync(blobFile(dataDir, neededDigest))).toBe(true);
    expect(await readdir(trash)).toEqual([]);
    await expectPulls(url, repo, image.digest);
  });
});

describe('admin API: usage and repository removal', () => {
  let registry: TestRegistry | undefined;
  afterEach(async () => {
    await registry?.close();
    registry = undefined;
  });

  it('accounts referenced, unique and shared bytes per repository, and deletes a repository', async () => {
    const clock = new TestClock();
    registry = await startRegistry({ gc: { interval: 0, gracePeriod: GRACE }, storage: { fsync: false } }, { clock: clock.now });
    const { url } = registry;
    const a = uniq('acct/a');
    const b = uniq('acct/b');
    const shared = randomBlob(4096);
    const imageA = await pushImageWith(url, a, 'v1', [shared]);
    const imageB = await pushImageWith(url, b, 'v1', [shared]);
    await pushImageWith(url, b, 'v2', [shared], { unique: 0 });

    const all = await usage(url);
    const rowA = all.repositories.find((r: { repository: string }) => r.repository === a);
    const uniqueA = bytesOf([imageA.config, imageA.layers[1]!]);
    expect(rowA).toMatchObject({ tags: 1, manifests: 1, blobs: 3, uniqueBytes: uniqueA, sharedBytes: 4096, referencedBytes: uniqueA + 4096 });
    expect(rowA.manifestBytes).toBe(imageA.bytes.length);
    const rowB = all.repositories.find((r: { repository: string }) => r.repository === b);
    expect(rowB.tags).toBe(2);
    expect(rowB.sharedBytes).toBe(4096);
    expect(all.totals.blobBytes).toBe(all.totals.referencedBytes + all.totals.unreferencedBytes);
    expect(all.totals.fileBytes).toBe(all.totals.blobBytes);

    const one = await usage(url, a);
    expect(one.repositories).toEqual([rowA]);
    expectError(await call(url, 'GET', '/_berth/admin/usage?repository=acct/nope'), 404, 'NAME_UNKNOWN');
    expectError(await call(url, 'GET', '/_berth/admin/usage?repository=Bad..Name'), 400, 'NAME_INVALID');

    const plan = await call(url, 'DELETE', `/_berth/admin/repositories/${a}?dryRun=true`);
    expect(plan.status).toBe(200);
    expect(plan.json()).toEqual({ repository: a, tags: 1, manifests: 1, links: 3, uniqueBytes: uniqueA, dryRun: true });
    await expectPulls(url, a, 'v1');

    const removed = await call(url, 'DELETE', `/_berth/admin/repositories/${a}`);
    expect(removed.json()).toEqual({ ...plan.json(), dryRun: false });
    expectError(await call(url, 'GET', `/v2/${a}/manifests/v1`), 404, 'NAME_UNKNOWN');
    expect((await call(url, 'GET', '/v2/_catalog')).json().repositories).not.toContain(a);
    expectError(await call(url, 'DELETE', `/_berth/admin/repositories/${a}`), 404, 'NAME_UNKNOWN');

    clock.later(PAST_GRACE);
    expect((await gc(url)).reclaimedBytes).toBe(uniqueA);
    await expectPulls(url, b, 'v1');
    await expectPulls(url, b, imageB.digest);
  });

  it('refuses repository removal when deletes are disabled, and unknown admin endpoints', async () => {
    registry = await startRegistry({ gc: { interval: 0 }, storage: { delete: false } });
    const repo = uniq('nodel/');
    await pushImageWith(registry.url, repo, 'v1', []);
    expectError(await call(registry.url, 'DELETE', `/_berth/admin/repositories/${repo}`), 405, 'UNSUPPORTED');
    expect((await call(registry.url, 'DELETE', `/_berth/admin/repositories/${repo}?dryRun=1`)).status).toBe(200);
    expectError(await call(registry.url, 'GET', '/_berth/admin/nothing'), 404, 'UNSUPPORTED');
    expectError(await call(registry.url, 'GET', '/_berth/admin/gc'), 404, 'UNSUPPORTED');
  });

  it('the server collects on its schedule', async () => {
    const clock = new TestClock();
    registry = await startRegistry({ gc: { interval: '100ms', gracePeriod: GRACE }, storage: { fsync: false } }, { clock: clock.now });
    const repo = uniq('sched/');
    const digest = await pushBlob(registry.url, repo, randomBlob(100));
    clock.later(PAST_GRACE);
    // A generous bound: only a collection that never comes fails this.
    const deadline = Date.now() + 40_000;
    while ((await call(registry.url, 'HEAD', `/v2/${repo}/blobs/${digest}`)).status === 200 && Date.now() < deadline) await sleep(50);
    expect((await call(registry.url, 'HEAD', `/v2/${repo}/blobs/${digest}`)).status).toBe(404);
  });
});
