// `npm run bench`: Berth side by side with CNCF Distribution on loopback.
// `npm run bench -- limits` prints this machine's ceilings only.
// Options: --only a,b,…  (scenarios)   --seconds N (duration of e; default 30)
// Scenario u (the web UI on 10,000 repositories) runs Berth alone, in Debian's Chromium.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { describeRequestCeiling, fileCreation, measureLimits, printLimits, requestCeiling, writeCeiling, type RequestCeiling } from './limits.js';
import { populateBerth, populateDistribution } from './populate.js';
import { rssMiB, sampleRss, startBerth, startDistribution, type Registry } from './registries.js';
import * as s from './scenarios.js';
import * as img from './images.js';
import { uiPageLoads } from './ui.js';

type Direction = 'higher' | 'lower';
interface Row {
  id: string;
  figure: string;
  unit: string;
  distribution: number | null;
  berth: number;
  direction: Direction;
  /** Human-readable target and whether Berth meets it. */
  target: string;
  met: boolean;
}

const rows: Row[] = [];

function compare(id: string, figure: string, unit: string, d: number, b: number, direction: Direction, factor: number) {
  const speedup = direction === 'higher' ? b / d : d / b;
  rows.push({
    id,
    figure,
    unit,
    distribution: d,
    berth: b,
    direction,
    target: `>= ${factor}x${direction === 'lower' ? ' faster' : ''}`,
    met: speedup >= factor,
  });
}

function absolute(id: string, figure: string, unit: string, d: number | null, b: number, limit: number) {
  rows.push({ id, figure, unit, distribution: d, berth: b, direction: 'lower', target: `<= ${limit} ${unit}`, met: b <= limit });
}

function ensureInstalled(command: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${command}`]).status === 0) return;
  console.log(`installing ${pkg} (Debian package)…`);
  const update = spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
  const install = spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: 'inherit' });
  if (update.status !== 0 || install.status !== 0) throw new Error(`could not install ${pkg}`);
}

/**
 * Runs `scenario` on both registries `reps` times, alternating who goes first; keeps the
 * best. Each run starts with the page cache written back (`sync`): a registry that leaves
 * its writes to the kernel (Distribution never fsyncs) would otherwise have them flushed
 * during, and charged to, the next run.
 */
async function interleaved(
  pair: Registry[],
  reps: number,
  scenario: (reg: Registry) => Promise<number>,
  direction: Direction = 'higher',
): Promise<[number, number]> {
  const best = new Map<string, number>();
  for (let r = 0; r < reps; r++) {
    const order = r % 2 === 0 ? pair : [...pair].reverse();
    for (const reg of order) {
      spawnSync('sync');
      const value = await scenario(reg);
      const previous = best.get(reg.name);
      const better = previous === undefined || (direction === 'higher' ? value > previous : value < previous);
      if (better) best.set(reg.name, value);
    }
  }
  return [best.get('Distribution')!, best.get('Berth')!];
}

function fmt(value: number | null): string {
  if (value === null) return '—';
  if (value >= 1000) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function printTable(): void {
  const header = ['', 'figure', 'unit', 'Distribution', 'Berth', 'Berth/Distribution', 'target', ''];
  const body = rows.map((r) => [
    r.id,
    r.figure,
    r.unit,
    fmt(r.distribution),
    fmt(r.berth),
    r.distribution === null ? '—' : `${(r.berth / r.distribution).toFixed(2)}`,
    r.target,
    r.met ? 'met' : 'MISSED',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of body) console.log(line(row));
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { only: { type: 'string' }, seconds: { type: 'string', default: '30' } },
  });
  if (positionals[0] === 'limits') {
    printLimits(await measureLimits());
    return;
  }
  const only = new Set((values.only ?? 'a,b,c,d,e,f,g,h,i,j,k,l,m,u').split(','));
  const seconds = Number(values.seconds);
  ensureInstalled('docker-registry', 'docker-registry');
  ensureInstalled('wrk', 'wrk');
  ensureInstalled('ab', 'apache2-utils');
  ensureInstalled('zstd', 'zstd');
  if (only.has('u')) ensureInstalled('chromium', 'chromium');
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`);

  const writeMBps = await writeCeiling();
  console.log(`sequential new-file write + fsync ceiling: ${writeMBps.toFixed(0)} MB/s`);
  const creation = await fileCreation();
  process.once('exit', () => rmSync(creation.dir, { recursive: true, force: true }));
  console.log(`creating an empty file in the temp dir: ${creation.micros.toFixed(0)} µs (slow after recent deletions nearby; see the README)`);

  const pair = [await startDistribution(), await startBerth()];
  const [dist, berth] = pair as [Registry, Registry];
  // Idle means settled: V8 gives back its start-up garbage once the process has been quiet
  // for about ten seconds (Go's scavenger returns memory similarly), so both wait 15 s.
  await sleep(15_000);
  const idle = [rssMiB(dist.child.pid!), rssMiB(berth.child.pid!)] as const;
  const peaks = pair.map((r) => sampleRss(r.child.pid!));
  const uploadTarget = (d: number) => Math.min(1.5, (0.9 * writeMBps) / d);
  let ceiling: RequestCeiling | undefined;
  try {
    if (only.has('a')) {
      const [d, b] = await interleaved(pair, 2, s.monolithicUpload);
      compare('a', 'monolithic upload, 256 MiB', 'MB/s', d, b, 'higher', Number(uploadTarget(d).toFixed(2)));
    }
    if (only.has('b')) {
      const [d, b] = await interleaved(pair, 2, s.chunkedUpload);
      compare('b', 'chunked upload, 16 MiB PATCHes', 'MB/s', d, b, 'higher', Number(uploadTarget(d).toFixed(2)));
    }
    if (only.has('c')) {
      const [d, b] = await interleaved(pair, 1, s.download);
      compare('c', 'download 256 MiB, warm cache', 'MB/s', d, b, 'higher', 1);
    }
    if (only.has('d')) {
      const [d, b] = await interleaved(pair, 2, s.smallBlobs);
      compare('d', '2,000 blobs of 4 KiB, 16 at once', 'blobs/s', d, b, 'higher', 3);
    }
    if (only.has('e')) {
      const [d, b] = await interleaved(pair, 2, (r) => s.imagePushes(r, seconds));
      compare('e', 'image pushes (20 x 1 MiB layers), 8 at once', 'images/s', d, b, 'higher', 2);
    }
    if (only.has('f')) {
      const results = new Map<string, Awaited<ReturnType<typeof s.hotReads>>>();
      for (const reg of pair) results.set(reg.name, await s.hotReads(reg, 10));
      const d = results.get('Distribution')!;
      const b = results.get('Berth')!;
      compare('f', 'manifest GET by tag, 64 conns', 'req/s', d.manifest.rps, b.manifest.rps, 'higher', 10);
      rows.push({ id: 'f', figure: '  latency p50', unit: 'ms', distribution: d.manifest.p50ms, berth: b.manifest.p50ms, direction: 'lower', target: '', met: true });
      absolute('f', '  latency p99', 'ms', d.manifest.p99ms, b.manifest.p99ms, 10);
      compare('f', 'blob HEAD, 64 conns', 'req/s', d.head.rps, b.head.rps, 'higher', 10);
      rows.push({ id: 'f', figure: '  latency p50', unit: 'ms', distribution: d.head.p50ms, berth: b.head.p50ms, direction: 'lower', target: '', met: true });
      absolute('f', '  latency p99', 'ms', d.head.p99ms, b.head.p99ms, 10);
      // The same load against a bare Node server answering from memory: what one Node process reaches here.
      ceiling = await requestCeiling(10);
    }
    if (only.has('i')) {
      const [d, b] = await interleaved(pair, 2, s.concurrentUploads);
      compare('i', '32 concurrent uploads of 32 MiB', 'MB/s', d, b, 'higher', 1);
    }
    if (only.has('k') || only.has('l')) await imageScenarios(pair, only);
    if (only.has('h')) {
      const large = new Map<string, { pushMiB: number; pullMiB: number }>();
      for (const reg of pair) large.set(reg.name, await s.largeBlobRss(reg));
      absolute('h', 'RSS idle', 'MiB', idle[0], idle[1], 80);
      const [dPeak, bPeak] = peaks.map((p) => p.stop()) as [number, number];
      absolute('h', 'RSS peak during the run', 'MiB', dPeak, bPeak, 256);
      absolute('h', 'RSS pushing a 2 GiB blob', 'MiB', large.get('Distribution')!.pushMiB, large.get('Berth')!.pushMiB, 256);
      absolute('h', 'RSS pulling a 2 GiB blob', 'MiB', large.get('Distribution')!.pullMiB, large.get('Berth')!.pullMiB, 256);
    }
  } finally {
    for (const p of peaks) p.stop();
    for (const reg of pair) await reg.stop();
  }

  if (only.has('g')) {
    const listingPair = [await startDistribution(), await startBerth()];
    try {
      for (const reg of listingPair) {
        const start = performance.now();
        await s.populateListings(reg);
        console.log(`${reg.name}: 5,000 repositories and 5,000 tags pushed in ${((performance.now() - start) / 1000).toFixed(1)} s`);
      }
      const results = new Map<string, { catalogWalkS: number; tagsListMs: number }>();
      for (const reg of listingPair) results.set(reg.name, await s.listings(reg));
      const d = results.get('Distribution')!;
      const b = results.get('Berth')!;
      compare('g', 'catalog walk, 5,000 repos, n=100', 's', d.catalogWalkS, b.catalogWalkS, 'lower', 20);
      compare('g', 'tags/list of 5,000 tags', 'ms', d.tagsListMs, b.tagsListMs, 'lower', 2);
    } finally {
      for (const reg of listingPair) await reg.stop();
    }
  }

  if (only.has('j')) {
    const scale = new Map<string, { catalogMs: number; manifestMs: number }>();
    for (const count of [100, 100_000]) {
      const dDir = await mkdtemp(join(tmpdir(), 'bench-distribution-'));
      const bDir = await mkdtemp(join(tmpdir(), 'bench-berth-'));
      populateDistribution(dDir, count);
      await populateBerth(bDir, count);
      const scalePair = [await startDistribution(dDir), await startBerth(bDir)];
      try {
        for (const reg of scalePair) scale.set(`${reg.name}@${count}`, await s.scaleLatencies(reg, count));
      } finally {
        for (const reg of scalePair) await reg.stop();
        spawnSync('rm', ['-rf', dDir, bDir]);
      }
    }
    for (const key of ['catalogMs', 'manifestMs'] as const) {
      const label = key === 'catalogMs' ? 'first _catalog page' : 'manifest GET by tag';
      for (const count of [100, 100_000]) {
        rows.push({
          id: 'j',
          figure: `${label}, ${count.toLocaleString('en')} repos`,
          unit: 'ms',
          distribution: scale.get(`Distribution@${count}`)![key],
          berth: scale.get(`Berth@${count}`)![key],
          direction: 'lower',
          target: '',
          met: true,
        });
      }
      const growth = (name: string) => scale.get(`${name}@100000`)![key] / scale.get(`${name}@100`)![key];
      rows.push({
        id: 'j',
        figure: `  growth 100 -> 100,000 repos`,
        unit: 'x',
        distribution: growth('Distribution'),
        berth: growth('Berth'),
        direction: 'lower',
        target: '<= 1.5x',
        met: growth('Berth') <= 1.5,
      });
    }
  }

  if (only.has('m')) {
    const count = 100_000;
    const dir = await img.searchIndex(count);
    const berthSearch = await startBerth(dir);
    try {
      const m = await img.searchLatencies(berthSearch, count);
      absolute('m', `docker search, ${count.toLocaleString('en')} repos, 10 matches`, 'ms', null, m.selectiveMs, 50);
      absolute('m', `  browse API ?q=, the same 10 matches`, 'ms', null, m.apiMs, 50);
      rows.push({ id: 'm', figure: `  docker search matching all ${count.toLocaleString('en')}`, unit: 'ms', distribution: null, berth: m.broadMs, direction: 'lower', target: '', met: true });
    } finally {
      await berthSearch.stop();
      spawnSync('rm', ['-rf', dir]);
    }
  }

  if (only.has('u')) {
    for (const load of await uiPageLoads(10_000)) {
      const search = load.page.startsWith('  search');
      absolute('u', search ? `${load.page}, to result` : `UI ${load.page} page, first load, 10,000 repos`, 'ms', null, load.interactiveMs, 1000);
      if (search) continue;
      const kB = load.transferredBytes / 1000;
      if (load.page === 'repositories') absolute('u', '  bytes transferred', 'kB', null, kB, 200);
      else rows.push({ id: 'u', figure: '  bytes transferred', unit: 'kB', distribution: null, berth: kB, direction: 'lower', target: '', met: true });
    }
  }

  printTable();
  if (ceiling) console.log(`\nf ceiling, a bare Node server answering a small body from memory: ${describeRequestCeiling(ceiling)}`);
  const results = join('bench', 'results');
  mkdirSync(results, { recursive: true });
  const file = join(results, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const summary = { date: new Date().toISOString(), writeCeilingMBps: writeMBps, fileCreateMicros: creation.micros, requestCeiling: ceiling, rows };
  writeFileSync(file, JSON.stringify(summary, null, 2));
  console.log(`\nresults: ${file}`);
}

/**
 * k) pushes of a real gzip and zstd layer (about 256 MiB compressed) and l) manifest PUTs of
 * 50 layers, against Distribution, Berth (layers verified, the default) and Berth with
 * verify.layers off; and the layer thread's decompression rate per CPU-second.
 */
async function imageScenarios(pair: Registry[], only: Set<string>): Promise<void> {
  const off = await startBerth(undefined, { BERTH_VERIFY_LAYERS: 'off' });
  const trio = [...pair, off];
  const label = (r: Registry) => (r === off ? 'Berth, verify off' : r.name);
  try {
    if (only.has('k')) {
      const dir = await mkdtemp(join(tmpdir(), 'bench-layers-'));
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      const layers = await img.realLayers(dir, 640 * 1024 * 1024);
      for (const layer of [layers.gzip, layers.zstd]) {
        const best = new Map<string, { uploadMBps: number; pushMBps: number }>();
        for (let rep = 0; rep < 2; rep++) {
          for (const reg of rep % 2 === 0 ? trio : [...trio].reverse()) {
            spawnSync('sync');
            const result = await img.realLayerPush(reg, layer);
            const prev = best.get(label(reg));
            best.set(label(reg), {
              uploadMBps: Math.max(prev?.uploadMBps ?? 0, result.uploadMBps),
              pushMBps: Math.max(prev?.pushMBps ?? 0, result.pushMBps),
            });
          }
        }
        const d = best.get('Distribution')!;
        const on = best.get('Berth')!;
        const bare = best.get('Berth, verify off')!;
        const size = `${(layer.size / 1024 / 1024).toFixed(0)} MiB ${layer.format} layer of real files`;
        compare('k', `${size}: blob upload`, 'MB/s', d.uploadMBps, on.uploadMBps, 'higher', 1.5);
        compare('k', `  the same, verify off`, 'MB/s', d.uploadMBps, bare.uploadMBps, 'higher', 1.5);
        compare('k', `  whole push, until the manifest is accepted`, 'MB/s', d.pushMBps, on.pushMBps, 'higher', 1.5);
        compare('k', `  the same, verify off`, 'MB/s', d.pushMBps, bare.pushMBps, 'higher', 1.5);
        const rate = await img.decompressRate(layer);
        rows.push({ id: 'k', figure: `  decompress + SHA-256 per core, in (out)`, unit: 'MB/s', distribution: null, berth: rate.inMBps, direction: 'higher', target: `${rate.outMBps.toFixed(0)} MB/s out`, met: true });
      }
    }
    if (only.has('l')) {
      const times = new Map<string, number>();
      for (const reg of trio) times.set(label(reg), await img.manifestPut50(reg));
      const d = times.get('Distribution')!;
      compare('l', 'manifest PUT naming 50 layers, median', 'ms', d, times.get('Berth')!, 'lower', 1);
      compare('l', '  the same, verify off', 'ms', d, times.get('Berth, verify off')!, 'lower', 1);
    }
  } finally {
    await off.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
