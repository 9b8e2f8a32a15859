import { createHash, randomBytes, type Hash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  blobExists,
  getJson,
  http,
  imageConfig,
  imageManifest,
  OCI_MANIFEST,
  pool,
  pushBlob,
  pushBlobChunked,
  putManifest,
  sha256,
} from './client.js';
import { sampleRss, type Registry } from './registries.js';

const MiB = 1024 * 1024;
const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`verification failed: ${message}`);
}

interface Variant {
  /** The base's shared bytes and the copy's own last 32. */
  parts: [Buffer, Buffer];
  digest: string;
  size: number;
}

/**
 * Distinct variants of one base buffer: each is the base with its last 32 bytes replaced
 * by the SHA-256 of its tag, so distinct tags of any length give distinct blobs (a
 * registry must store every one of them). A variant is sent as two parts, the shared
 * prefix and its own suffix, and its digest resumes from the prefix's hash state: the
 * load generator neither copies nor rehashes a blob, and leaves the CPU to the registries.
 */
class Variants {
  private readonly prefix: Buffer;
  private readonly prefixHash: Hash;

  constructor(base: Buffer) {
    this.prefix = base.subarray(0, base.length - 32);
    this.prefixHash = createHash('sha256').update(this.prefix);
  }

  make(tag: string): Variant {
    const suffix = createHash('sha256').update(tag).digest();
    const digest = `sha256:${this.prefixHash.copy().update(suffix).digest('hex')}`;
    return { parts: [this.prefix, suffix], digest, size: this.prefix.length + suffix.length };
  }
}

async function verifyDownload(reg: Registry, repo: string, digest: string, size: number): Promise<void> {
  const reply = await http(`${reg.url}/v2/${repo}/blobs/${digest}`);
  check(reply.status === 200 && reply.body.length === size && sha256(reply.body) === digest, `${reg.name} ${repo}@${digest} content`);
}

const bigBytes = randomBytes(256 * MiB);
const big = new Variants(bigBytes);
const big32 = new Variants(bigBytes.subarray(0, 32 * MiB));
let runCounter = 0;

/** a) POST + PUT of a 256 MiB blob. */
export async function monolithicUpload(reg: Registry): Promise<number> {
  const { parts, digest, size } = big.make(`a-${reg.name}-${runCounter++}`);
  const start = performance.now();
  await pushBlob(reg.url, 'bench/a', parts, digest, size);
  const result = mbps(size, performance.now() - start);
  await verifyDownload(reg, 'bench/a', digest, size);
  return result;
}

/** b) The same in 16 MiB PATCHes. */
export async function chunkedUpload(reg: Registry): Promise<number> {
  const { parts, digest } = big.make(`b-${reg.name}-${runCounter++}`);
  const blob = Buffer.concat(parts);
  const start = performance.now();
  await pushBlobChunked(reg.url, 'bench/b', blob, digest, 16 * MiB);
  const result = mbps(blob.length, performance.now() - start);
  await verifyDownload(reg, 'bench/b', digest, blob.length);
  return result;
}

/** c) Download of a 256 MiB blob from a warm page cache (best of 3). */
export async function download(reg: Registry): Promise<number> {
  const { parts, digest, size } = big.make(`c-${reg.name}`);
  if (!(await blobExists(reg.url, 'bench/c', digest))) await pushBlob(reg.url, 'bench/c', parts, digest, size);
  await verifyDownload(reg, 'bench/c', digest, size);
  let best = 0;
  for (let i = 0; i < 3; i++) best = Math.max(best, curlDownload(`${reg.url}/v2/bench/c/blobs/${digest}`, size));
  return best;
}

/**
 * MB/s of one GET with curl writing to /dev/null: a client far faster than the servers,
 * unlike a Node one. Fails unless exactly `size` bytes arrive.
 */
export function curlDownload(url: string, size: number): number {
  const run = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url], { encoding: 'utf8' });
  const [bytes, seconds] = run.stdout.trim().split(' ').map(Number) as [number, number];
  check(run.status === 0 && bytes === size, `download of ${url}: ${bytes} bytes`);
  return mbps(bytes, seconds * 1000);
}

/** d) 2,000 distinct 4 KiB blobs, 16 at a time (POST + PUT each). */
export async function smallBlobs(reg: Registry): Promise<number> {
  const blobs = Array.from({ length: 2000 }, () => randomBytes(4096));
  const digests = blobs.map(sha256);
  const start = performance.now();
  await pool(blobs.length, 16, (i) => pushBlob(reg.url, 'bench/d', blobs[i]!, digests[i]!, 4096));
  const result = blobs.length / ((performance.now() - start) / 1000);
  await pool(blobs.length, 16, async (i) => check(await blobExists(reg.url, 'bench/d', digests[i]!), `${reg.name} small blob ${i}`));
  return result;
}

/** e) Whole image pushes (HEAD, POST, PUT per blob; then the manifest), 8 at a time for `seconds`. */
export async function imagePushes(reg: Registry, seconds: number): Promise<number> {
  const layerBase = new Variants(randomBytes(MiB));
  const run = runCounter++;
  const pushed: string[] = [];
  let next = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  const pushImage = async (n: number) => {
    const repo = `bench/e${n % 4}`;
    const layers = Array.from({ length: 20 }, (_, i) => layerBase.make(`e-${reg.name}-${run}-${n}-${i}`));
    const config = imageConfig({ image: n, run, registry: reg.name }, layers);
    const descriptors = [{ parts: [config], digest: sha256(config), size: config.length }, ...layers];
    for (const d of descriptors) {
      // Every blob is new: a registry that already had one would be measured on less work.
      check(!(await blobExists(reg.url, repo, d.digest)), `${reg.name} had blob ${d.digest} before it was pushed`);
      await pushBlob(reg.url, repo, d.parts, d.digest, d.size);
    }
    const [cfg, ...rest] = descriptors.map(({ digest, size }) => ({ digest, size }));
    await putManifest(reg.url, repo, `r${run}i${n}`, imageManifest(cfg!, rest));
    pushed.push(`${repo}:r${run}i${n}`);
  };
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < deadline) await pushImage(next++);
    }),
  );
  const result = pushed.length / ((performance.now() - start) / 1000);
  for (const ref of pushed.slice(-10)) {
    const [repo, tag] = ref.split(':') as [string, string];
    const reply = await http(`${reg.url}/v2/${repo}/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST } });
    check(reply.status === 200, `${reg.name} image ${ref}`);
    const manifest = JSON.parse(reply.body.toString()) as { layers: { digest: string; size: number }[] };
    for (const layer of manifest.layers) await verifyDownload(reg, repo, layer.digest, layer.size);
  }
  return result;
}

export interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
}

function parseLatency(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) throw new Error(`cannot parse wrk latency "${text}"`);
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2] as 'us' | 'ms' | 's'];
}

/** wrk with 64 connections for `seconds`; non-2xx answers fail the run. */
export function wrk(url: string, method: string, headers: Record<string, string>, seconds: number): WrkResult {
  const script = join(tmpdir(), `bench-wrk-${process.pid}.lua`);
  const lines = [`wrk.method = "${method}"`, ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`)];
  writeFileSync(script, `${lines.join('\n')}\n`);
  const run = spawnSync('wrk', ['-t2', '-c64', `-d${seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  rmSync(script, { force: true });
  if (run.status !== 0) throw new Error(`wrk failed: ${run.stderr}`);
  const out = run.stdout;
  check(!/Non-2xx or 3xx responses/.test(out), `wrk saw error responses for ${url}:\n${out}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]),
    p50ms: parseLatency(/\s50%\s+(\S+)/.exec(out)![1]!),
    p99ms: parseLatency(/\s99%\s+(\S+)/.exec(out)![1]!),
  };
}

/**
 * ApacheBench for HEAD (wrk waits for a body after a HEAD response that carries a
 * Content-Length): 64 keep-alive connections for `seconds`.
 */
export function ab(url: string, seconds: number): WrkResult {
  const run = spawnSync('ab', ['-q', '-k', '-i', '-c', '64', '-t', String(seconds), '-n', '10000000', url], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`ab failed: ${run.stderr}`);
  const out = run.stdout;
  check(/Failed requests:\s+0\b/.test(out) && !/Non-2xx responses/.test(out), `ab saw failed requests for ${url}:\n${out}`);
  return {
    rps: Number(/Requests per second:\s+([\d.]+)/.exec(out)![1]),
    p50ms: Number(/\s50%\s+(\d+)/.exec(out)![1]),
    p99ms: Number(/\s99%\s+(\d+)/.exec(out)![1]),
  };
}

/** f) Manifest GET by tag (wrk) and blob HEAD (ab) under 64 connections, after a warm-up round of each. */
export async function hotReads(reg: Registry, seconds: number): Promise<{ manifest: WrkResult; head: WrkResult }> {
  const layer = randomBytes(64 * 1024);
  const layerD = { digest: sha256(layer), size: layer.length };
  const config = imageConfig({}, [layerD]);
  const configD = { digest: sha256(config), size: config.length };
  await pushBlob(reg.url, 'bench/f', layer, layerD.digest, layer.length);
  await pushBlob(reg.url, 'bench/f', config, configD.digest, config.length);
  await putManifest(reg.url, 'bench/f', 'latest', imageManifest(configD, [layerD]));
  const getManifest = (s: number) => wrk(`${reg.url}/v2/bench/f/manifests/latest`, 'GET', { Accept: OCI_MANIFEST }, s);
  const headBlob = (s: number) => ab(`${reg.url}/v2/bench/f/blobs/${layerD.digest}`, s);
  // Measure the steady state of a serving registry: a first, discarded round warms up
  // what warms up (Node's JIT compiles the hot path during its first second or so).
  getManifest(3);
  headBlob(3);
  return { manifest: getManifest(seconds), head: headBlob(seconds) };
}

/** g) setup: 5,000 repositories with one image each, and one repository with 5,000 tags. */
export async function populateListings(reg: Registry): Promise<void> {
  const config = imageConfig({ listing: true }, []);
  const configD = { digest: sha256(config), size: config.length };
  const manifest = imageManifest(configD, []);
  await pool(5000, 32, async (i) => {
    const repo = `list/r${String(i).padStart(5, '0')}`;
    await pushBlob(reg.url, repo, config, configD.digest, config.length);
    await putManifest(reg.url, repo, 'latest', manifest);
  });
  await pushBlob(reg.url, 'list/tags', config, configD.digest, config.length);
  await pool(5000, 32, (i) => putManifest(reg.url, 'list/tags', `t${String(i).padStart(5, '0')}`, manifest));
}

/** Follows the catalog's Link headers with n=100 from the first page to the last; returns every name. */
async function walkCatalog(reg: Registry): Promise<string[]> {
  const names: string[] = [];
  let url: string | undefined = `${reg.url}/v2/_catalog?n=100`;
  while (url) {
    const page: { body: { repositories: string[] }; link: string | undefined } = await getJson(url);
    names.push(...page.body.repositories);
    const next = page.link && /<([^>]+)>/.exec(page.link)?.[1];
    url = next ? new URL(next, reg.url).toString() : undefined;
  }
  return names;
}

/** g) Full catalog walk (seconds, best of 3) and the 5,000-tag list (ms, median of 9). */
export async function listings(reg: Registry): Promise<{ catalogWalkS: number; tagsListMs: number }> {
  let catalogWalkS = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const names = await walkCatalog(reg);
    catalogWalkS = Math.min(catalogWalkS, (performance.now() - start) / 1000);
    check(names.filter((n) => n.startsWith('list/r')).length === 5000, `${reg.name} catalog has ${names.length} names`);
  }
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const start = performance.now();
    const { body } = await getJson<{ tags: string[] }>(`${reg.url}/v2/list/tags/tags/list`);
    times.push(performance.now() - start);
    check(body.tags.length === 5000, `${reg.name} tag list has ${body.tags.length} tags`);
  }
  return { catalogWalkS, tagsListMs: median(times) };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** h) RSS while pushing and while pulling a 2 GiB blob streamed from a 1 MiB pattern. */
export async function largeBlobRss(reg: Registry): Promise<{ pushMiB: number; pullMiB: number }> {
  const chunk = randomBytes(MiB);
  const size = 2048 * MiB;
  const hash = createHash('sha256');
  for (let i = 0; i < 2048; i++) hash.update(chunk);
  const digest = `sha256:${hash.digest('hex')}`;
  const body = async function* () {
    for (let i = 0; i < 2048; i++) yield chunk;
  };
  let rss = sampleRss(reg.child.pid!);
  await pushBlob(reg.url, 'bench/h', body, digest, size);
  const pushMiB = rss.stop();
  rss = sampleRss(reg.child.pid!);
  const pulled = createHash('sha256');
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    import('node:http').then(({ get }) =>
      get(`${reg.url}/v2/bench/h/blobs/${digest}`, (res) => {
        res.on('data', (data: Buffer) => {
          pulled.update(data);
          bytes += data.length;
        });
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject),
    );
  });
  const pullMiB = rss.stop();
  check(bytes === size && `sha256:${pulled.digest('hex')}` === digest, `${reg.name} 2 GiB blob content`);
  return { pushMiB, pullMiB };
}

/** i) 32 distinct 32 MiB blobs uploaded at once. */
export async function concurrentUploads(reg: Registry): Promise<number> {
  const blobs = Array.from({ length: 32 }, (_, i) => big32.make(`i-${reg.name}-${runCounter}-${i}`));
  runCounter++;
  const start = performance.now();
  await Promise.all(blobs.map((b, i) => pushBlob(reg.url, `bench/i${i % 4}`, b.parts, b.digest, b.size)));
  const result = mbps(32 * 32 * MiB, performance.now() - start);
  for (let i = 0; i < blobs.length; i += 8) await verifyDownload(reg, `bench/i${i % 4}`, blobs[i]!.digest, blobs[i]!.size);
  return result;
}

/** Median latency of `request` over up to `iterations` runs or `budgetMs`, at least 3 runs. */
export async function latencyMs(request: () => Promise<void>, iterations = 200, budgetMs = 3000): Promise<number> {
  const times: number[] = [];
  const until = performance.now() + budgetMs;
  while (times.length < 3 || (times.length < iterations && performance.now() < until)) {
    const start = performance.now();
    await request();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** j) First catalog page and a manifest GET by tag, on a registry populated with `count` repositories. */
export async function scaleLatencies(reg: Registry, count: number): Promise<{ catalogMs: number; manifestMs: number }> {
  const middle = `scale/r${String(Math.floor(count / 2)).padStart(6, '0')}`;
  const catalogMs = await latencyMs(async () => {
    const { body } = await getJson<{ repositories: string[] }>(`${reg.url}/v2/_catalog?n=100`);
    check(body.repositories.length === 100, `${reg.name} first catalog page`);
  });
  const manifestMs = await latencyMs(async () => {
    const reply = await http(`${reg.url}/v2/${middle}/manifests/latest`, { headers: { Accept: OCI_MANIFEST } });
    check(reply.status === 200, `${reg.name} manifest of ${middle}: ${reply.status}`);
  });
  return { catalogMs, manifestMs };
}
