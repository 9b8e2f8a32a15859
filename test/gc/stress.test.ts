import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { call, descriptor, MT, pushBlob, pushManifest, randomBlob, sha256, uniq, type Pushed } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { berthAsync, gc, pullProblems, pushIndex } from './helpers.js';

const DURATION_MS = 8000;
const WORKERS = 4;
const GRACE = '2s';

describe('GC in a loop while clients push, pull and re-push tags', () => {
  let registry: TestRegistry | undefined;
  afterAll(async () => {
    await registry?.close();
    if (registry) await rm(registry.dataDir, { recursive: true, force: true });
  });

  it('loses nothing reachable and keeps every acknowledged push pullable while referenced', async () => {
    registry = await startRegistry(
      { gc: { interval: 0, gracePeriod: GRACE, untaggedAfter: 0 }, storage: { fsync: false }, log: { level: 'error' } },
      { keepData: true },
    );
    const { url, dataDir } = registry;
    const repos = [uniq('stress/a'), uniq('stress/b')];
    const base = [randomBlob(16_000), randomBlob(12_000), randomBlob(8_000)];
    // An image in each repository that is never touched keeps the base layers referenced, so
    // a client that finds one already there ("Layer already exists") may rely on it.
    for (const repo of repos) await pushImage(url, repo, 'anchor', base);

    const acknowledged: { repo: string; digest: string }[] = [];
    const failures: string[] = [];
    let pulls = 0;
    let stop = false;

    async function pushImage(base_: string, repo: string, tag: string | undefined, shared: Buffer[]): Promise<Pushed> {
      const unique = randomBlob(2000 + Math.floor(Math.random() * 6000));
      // Uncompressed layers: their diff_ids are their digests.
      const diffIds = [...shared, unique].map((l) => sha256(l));
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: uniq(), rootfs: { type: 'layers', diff_ids: diffIds } }));
      await pushBlob(base_, repo, config);
      await pushBlob(base_, repo, unique);
      for (const layer of shared) {
        if (Math.random() < 0.5) {
          await pushBlob(base_, repo, layer); // a re-upload: re-publishes the file
        } else {
          const head = await call(base_, 'HEAD', `/v2/${repo}/blobs/${sha256(layer)}`);
          if (head.status !== 200) {
            const from = repos.find((r) => r !== repo)!;
            const mount = await call(base_, 'POST', `/v2/${repo}/blobs/uploads/?mount=${sha256(layer)}&from=${from}`);
            if (mount.status !== 201) await pushBlob(base_, repo, layer);
          }
        }
      }
      return pushManifest(
        base_,
        repo,
        tag,
        {
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: descriptor(MT.ociConfig, config),
          layers: [...shared, unique].map((l) => descriptor(MT.ociTarLayer, l)),
        },
        MT.ociManifest,
      );
    }

    async function worker(n: number): Promise<void> {
      for (let round = 0; !stop; round++) {
        const repo = repos[(n + round) % repos.length]!;
        const tag = `t${Math.floor(Math.random() * 3)}`;
        try {
          if (round % 5 === 4) {
            const children = [await pushImage(url, repo, undefined, base.slice(0, 2)), await pushImage(url, repo, undefined, base.slice(1))];
            acknowledged.push(...children.map((c) => ({ repo, digest: c.digest })));
            const index = await pushIndex(url, repo, `multi${n % 2}`, children);
            acknowledged.push({ repo, digest: index.digest });
          } else {
            const image = await pushImage(url, repo, tag, base.filter(() => Math.random() < 0.7));
            acknowledged.push({ repo, digest: image.digest });
          }
          if (round % 7 === 6) await call(url, 'DELETE', `/v2/${repo}/manifests/${tag}`);
          const tags = (await call(url, 'GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags;
          const pick = tags[Math.floor(Math.random() * tags.length)]!;
          const problems = await pullProblems(url, repo, pick);
          // A tag deleted or moved meanwhile is fine; a broken pull of what it named is not.
          const lost = problems.filter((p) => !/manifest answered 404/.test(p));
          failures.push(...lost);
          pulls++;
        } catch (err) {
          failures.push(`worker ${n} round ${round}: ${(err as Error).message.slice(0, 300)}`);
        }
      }
    }

    let collections = 0;
    let cliRuns = 0;
    let manifestsRemoved = 0;
    let reclaimed = 0;
    async function collector(): Promise<void> {
      let lastCli = Date.now();
      while (!stop) {
        if (Date.now() - lastCli > 2000) {
          lastCli = Date.now();
          // Another process collecting on the same directory at the same time.
          const cli = await berthAsync(['gc', '--json'], dataDir, {
            BERTH_GC_GRACE_PERIOD: GRACE,
            BERTH_GC_UNTAGGED_AFTER: '0s',
            BERTH_STORAGE_FSYNC: 'false',
          });
          if (cli.status !== 0) failures.push(`berth gc exited ${cli.status}: ${cli.stderr.slice(0, 500)}`);
          else {
            const { result } = JSON.parse(cli.stdout);
            manifestsRemoved += result.manifests.length;
            reclaimed += result.reclaimedBytes;
          }
          cliRuns++;
        } else {
          const report = await gc(url);
          manifestsRemoved += report.manifests.length;
          reclaimed += report.reclaimedBytes;
          collections++;
          await sleep(20);
        }
      }
    }

    const running = [...Array.from({ length: WORKERS }, (_, n) => worker(n)), collector()];
    // At least DURATION_MS, and on a busy machine until the run has exercised what it claims to (below).
    const started = Date.now();
    while (Date.now() - started < DURATION_MS || (Date.now() - started < 15 * DURATION_MS && !(collections > 10 && cliRuns > 1 && pulls > 20))) {
      await sleep(100);
    }
    stop = true;
    await Promise.all(running);

    expect(failures).toEqual([]);
    // The run exercised what it claims to.
    expect(collections).toBeGreaterThan(10);
    expect(cliRuns).toBeGreaterThan(1);
    expect(pulls).toBeGreaterThan(20);
    expect(manifestsRemoved).toBeGreaterThan(0);
    expect(reclaimed).toBeGreaterThan(0);

    // Everything tagged now pulls completely; every acknowledged manifest still there is intact.
    for (const repo of repos) {
      const tags = (await call(url, 'GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags;
      expect(tags).toContain('anchor');
      for (const tag of tags) expect(await pullProblems(url, repo, tag)).toEqual([]);
    }
    let present = 0;
    for (const { repo, digest } of acknowledged) {
      const head = await call(url, 'HEAD', `/v2/${repo}/manifests/${digest}`);
      if (head.status === 404) continue;
      present++;
      expect(await pullProblems(url, repo, digest)).toEqual([]);
    }
    expect(present).toBeGreaterThan(0);
    expect(present).toBeLessThan(acknowledged.length);

    await registry.close();
    const consistency = await checkConsistency(dataDir);
    expect(consistency.problems).toEqual([]);
    await rm(dataDir, { recursive: true, force: true });
    registry = undefined;
  }, 240_000);
});
