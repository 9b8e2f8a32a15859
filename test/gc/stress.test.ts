import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { call, descriptor, MT, pushBlob, pushManifest, randomBlob, sha256, uniq, type Pushed } from '../helpers/oci.js';
import { HOUR } from '../helpers/clock.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { berthAsync, gc, pullProblems, pushIndex } from './helpers.js';

const WORKERS = 4;
const ROUNDS = 12;
/**
 * The grace period promises that what a push in flight relies on is not collected while
 * the push takes less than it. The registry's clock makes that hold for every push this
 * test makes, however slow the machine: it reads as the grace period (less a margin for
 * the file system's coarser timestamps) after the start of the oldest round in flight, so
 * a collection may remove anything older than that round and nothing a round in flight
 * pushed or pulled. The run is a fixed amount of work, not a duration.
 */
const GRACE_MS = HOUR;
const MARGIN_MS = 1000;

describe('GC in a loop while clients push, pull and re-push tags', () => {
  let registry: TestRegistry | undefined;
  afterAll(async () => {
    await registry?.close();
    if (registry) await rm(registry.dataDir, { recursive: true, force: true });
  });

  it('loses nothing reachable and keeps every acknowledged push pullable while referenced', async () => {
    const rounds = new Map<number, number>();
    const oldestInFlight = () => (rounds.size > 0 ? Math.min(...rounds.values()) : Date.now());
    registry = await startRegistry(
      { gc: { interval: 0, gracePeriod: '1h', untaggedAfter: 0 }, storage: { fsync: false }, log: { level: 'error' } },
      { keepData: true, clock: () => oldestInFlight() - MARGIN_MS + GRACE_MS },
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
      for (let round = 0; round < ROUNDS; round++) {
        rounds.set(n, Date.now());
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
      rounds.delete(n);
    }

    let collections = 0;
    let cliRuns = 0;
    let manifestsRemoved = 0;
    let reclaimed = 0;
    // Collections until the workers are done, at least 3 in the server, and every 4th one
    // by `berth gc`, another process on the same directory at the same time (on the real
    // clock, with the grace period of an hour: it removes nothing of this run's, but
    // walks the index and the files while the server changes both).
    async function collector(): Promise<void> {
      for (let turn = 1; !stop || collections < 3 || cliRuns < 2; turn++) {
        if (turn % 4 === 0) {
          const cli = await berthAsync(['gc', '--json'], dataDir, {
            BERTH_GC_GRACE_PERIOD: '1h',
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

    const collecting = collector();
    await Promise.all(Array.from({ length: WORKERS }, (_, n) => worker(n)));
    stop = true;
    await collecting;
    // Once the last round is past the margin, a collection removes what the run left
    // unreferenced: the manifests whose tags moved, and their unique layers.
    await sleep(MARGIN_MS + 100);
    const last = await gc(url);
    manifestsRemoved += last.manifests.length;
    reclaimed += last.reclaimedBytes;

    expect(failures).toEqual([]);
    // The run exercised what it claims to.
    expect(pulls).toBe(WORKERS * ROUNDS);
    expect(collections).toBeGreaterThanOrEqual(3);
    expect(cliRuns).toBeGreaterThanOrEqual(2);
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
