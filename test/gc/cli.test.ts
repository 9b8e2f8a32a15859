import { existsSync } from 'node:fs';
import { readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { call, expectError, hexOf, randomBlob, sha256, uniq } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { berth, berthAsync, expectPulls, pushImageWith, pushIndex } from './helpers.js';

function blobFile(dataDir: string, digest: string): string {
  const hex = hexOf(digest);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

// Each test's registry keeps its data directory (the CLI works on it after the registry is up); both go afterwards.
let registry: TestRegistry | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

describe('berth fsck', () => {
  it('finds a corrupted and a missing blob; --repair quarantines, removes what cannot be pulled and leaves the index consistent', async () => {
    registry = await startRegistry({ gc: { interval: 0 }, storage: { fsync: false } }, { keepData: true });
    dataDir = registry.dataDir;
    const { url } = registry;
    const repo = uniq('fsck/');
    const shared = randomBlob(2048);
    const healthy = await pushImageWith(url, repo, 'healthy', [shared]);
    const corrupted = await pushImageWith(url, repo, 'corrupted', [shared]);
    const missing = await pushImageWith(url, repo, 'missing', [shared]);
    // An index whose child loses a layer goes too; one over healthy children stays.
    const multi = await pushIndex(url, repo, 'multi', [missing, healthy]);
    const healthyIndex = await pushIndex(url, repo, 'multi-ok', [healthy]);

    const clean = berth(['fsck'], dataDir);
    expect(clean.status, clean.stdout + clean.stderr).toBe(0);
    expect(clean.stdout).toContain('0 problem(s)');

    const badLayer = corrupted.layers[1]!;
    const flipped = Buffer.from(badLayer);
    flipped[10] = flipped[10]! ^ 0xff;
    await writeFile(blobFile(dataDir, sha256(badLayer)), flipped);
    const goneLayer = missing.layers[1]!;
    await unlink(blobFile(dataDir, sha256(goneLayer)));

    // While the registry keeps running on the directory.
    const check = berth(['fsck', '--json'], dataDir);
    expect(check.status, check.stderr).toBe(1);
    const report = JSON.parse(check.stdout);
    expect(report.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'corrupt-blob', digest: sha256(badLayer) }),
        expect.objectContaining({ kind: 'missing-blob', digest: sha256(goneLayer) }),
      ]),
    );
    expect(report.problems).toHaveLength(2);
    expect(report.repaired).toBeUndefined();
    const text = berth(['fsck'], dataDir);
    expect(text.status).toBe(1);
    expect(text.stdout).toContain(`corrupt-blob`);
    expect(text.stdout).toContain(sha256(goneLayer));

    const repair = berth(['fsck', '--repair'], dataDir);
    expect(repair.status, repair.stdout + repair.stderr).toBe(0);
    expect(repair.stdout).toMatch(/repaired: 1 file\(s\) quarantined, 2 blob row\(s\), 3 manifest\(s\) and 3 tag\(s\) removed/);
    expect(repair.stdout).toContain(`${repo}@${corrupted.digest}`);
    expect(repair.stdout).toContain(`${repo}@${multi.digest}`);
    const quarantine = await readdir(join(dataDir, 'quarantine'));
    expect(quarantine).toEqual([expect.stringContaining(hexOf(sha256(badLayer)))]);
    expect(existsSync(blobFile(dataDir, sha256(badLayer)))).toBe(false);

    for (const tag of ['corrupted', 'missing', 'multi']) expectError(await call(url, 'GET', `/v2/${repo}/manifests/${tag}`), 404, 'MANIFEST_UNKNOWN');
    await expectPulls(url, repo, 'healthy');
    await expectPulls(url, repo, healthyIndex.digest);
    const again = berth(['fsck'], dataDir);
    expect(again.status, again.stdout).toBe(0);

    await registry.close();
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });
});

describe('berth gc, du and repo rm', () => {
  it('print what they will do and what they did, while the server runs', async () => {
    registry = await startRegistry({ gc: { interval: 0 }, storage: { fsync: false } }, { keepData: true });
    dataDir = registry.dataDir;
    const { url } = registry;
    const env = { BERTH_GC_GRACE_PERIOD: '200ms', BERTH_GC_UNTAGGED_AFTER: '0s', BERTH_STORAGE_FSYNC: 'false' };
    const app = uniq('cli/app');
    const other = uniq('cli/other');
    const shared = randomBlob(3000);
    const first = await pushImageWith(url, app, 'latest', [shared]);
    await pushImageWith(url, app, 'latest', [shared]);
    const otherImage = await pushImageWith(url, other, 'v1', [shared]);
    await sleep(300);

    const du = await berthAsync(['du'], dataDir, env);
    expect(du.status, du.stderr).toBe(0);
    expect(du.stdout).toMatch(/REPOSITORY\s+TAGS\s+MANIFESTS\s+REFERENCED\s+UNIQUE\s+SHARED/);
    expect(du.stdout).toContain(app);
    expect(du.stdout).toMatch(/reclaimable: .+ \(berth gc now\)/);
    const duJson = JSON.parse((await berthAsync(['du', app, '--json'], dataDir, env)).stdout);
    expect(duJson.repositories).toHaveLength(1);
    expect(duJson.repositories[0]).toMatchObject({ repository: app, tags: 1, manifests: 2, sharedBytes: 3000 });
    const predicted = first.config.length + first.layers[1]!.length;
    expect(duJson.totals.reclaimableBytes).toBe(predicted);
    const unknown = await berthAsync(['du', 'cli/nope'], dataDir, env);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('not known');

    const dry = await berthAsync(['gc', '--dry-run'], dataDir, env);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('will remove: 0 tag(s), 1 manifest(s), 2 blob row(s)');
    expect(dry.stdout).toContain(`manifest  ${app}@${first.digest}  untagged`);
    expect(dry.stdout).toContain('dry run: nothing was removed');
    expect((await call(url, 'HEAD', `/v2/${app}/manifests/${first.digest}`)).status).toBe(200);

    const run = await berthAsync(['gc', '--json'], dataDir, env);
    expect(run.status, run.stderr).toBe(0);
    const { plan, result } = JSON.parse(run.stdout);
    expect(plan.reclaimedBytes).toBe(predicted);
    expect(result.reclaimedBytes).toBe(predicted);
    expect(result.manifests.map((m: { digest: string }) => m.digest)).toEqual([first.digest]);
    expectError(await call(url, 'GET', `/v2/${app}/manifests/${first.digest}`), 404, 'MANIFEST_UNKNOWN');
    await expectPulls(url, app, 'latest');

    const text = await berthAsync(['gc'], dataDir, env);
    expect(text.stdout).toContain('will remove: 0 tag(s), 0 manifest(s)');
    expect(text.stdout).toContain('removed: 0 tag(s), 0 manifest(s)');

    const rmDry = await berthAsync(['repo', 'rm', app, '--dry-run'], dataDir, env);
    expect(rmDry.status, rmDry.stderr).toBe(0);
    expect(rmDry.stdout).toMatch(new RegExp(`will remove repository ${app}: 1 tag\\(s\\), 1 manifest\\(s\\), \\d+ blob link\\(s\\)`));
    await expectPulls(url, app, 'latest');
    const rm1 = await berthAsync(['repo', 'rm', app], dataDir, env);
    expect(rm1.status, rm1.stderr).toBe(0);
    expect(rm1.stdout).toContain(`removed repository ${app}: 1 tag(s), 1 manifest(s)`);
    expectError(await call(url, 'GET', `/v2/${app}/manifests/latest`), 404, 'NAME_UNKNOWN');
    const rm2 = await berthAsync(['repo', 'rm', app], dataDir, env);
    expect(rm2.status).toBe(1);
    expect((await berthAsync(['repo', 'rm', 'Bad//name'], dataDir, env)).status).toBe(2);
    expect((await berthAsync(['repo', 'frobnicate'], dataDir, env)).status).toBe(2);

    await sleep(300);
    const after = JSON.parse((await berthAsync(['gc', '--json'], dataDir, env)).stdout);
    expect(after.result.reclaimedBytes).toBeGreaterThan(0);
    await expectPulls(url, other, 'v1');
    await expectPulls(url, other, otherImage.digest);

    await registry.close();
    registry = undefined;
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
  });

  it('refuse a directory without a registry', async () => {
    const result = berth(['gc'], '/nonexistent/berth-data');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('no registry data');
  });
});
