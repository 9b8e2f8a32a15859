// Scenarios of the image-aware registry: pushes of real compressed layers (checked against
// their diff_ids), decompression speed, manifest PUTs of many layers, docker search.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, createReadStream, openSync, statSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Compressor } from 'zstd-napi';
import { getJson, http, imageConfig, OCI_MANIFEST, pushBlob, putManifest, sha256 } from './client.js';
import { populateBerth, repoName } from './populate.js';
import type { Registry } from './registries.js';
import { latencyMs, median } from './scenarios.js';

const MiB = 1024 * 1024;

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`verification failed: ${message}`);
}

/** A compressed layer built once, pushed many times as distinct blobs (see `variant`). */
export interface RealLayer {
  format: 'gzip' | 'zstd';
  path: string;
  size: number;
  /** SHA-256 states of the compressed file and of the tar inside, to resume from. */
  compressed: Hash;
  tar: Hash;
  tarSize: number;
}

async function hashFile(path: string): Promise<Hash> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash;
}

/**
 * A tar of real files (the machine's /usr/share, /usr/lib and /usr/bin, in name order, up to
 * `tarBytes`), compressed with gzip -6 (docker's level) and zstd -3 (podman's), in `dir`.
 */
export async function realLayers(dir: string, tarBytes: number): Promise<{ gzip: RealLayer; zstd: RealLayer }> {
  const list = spawnSync('sh', ['-c', 'find /usr/share /usr/lib /usr/bin -xdev -type f -size -32M 2>/dev/null | sort'], {
    encoding: 'utf8',
    maxBuffer: 256 * MiB,
  }).stdout;
  const files: string[] = [];
  let total = 0;
  for (const file of list.split('\n')) {
    if (file === '' || total >= tarBytes) continue;
    try {
      total += statSync(file).size + 512;
      files.push(file);
    } catch {
      // gone or unreadable
    }
  }
  const listFile = join(dir, 'files');
  const fd = openSync(listFile, 'w');
  writeSync(fd, files.join('\n'));
  closeSync(fd);
  const tar = join(dir, 'layer.tar');
  const run = (command: string) => check(spawnSync('sh', ['-c', command]).status === 0, command);
  run(`tar -cf ${tar} --files-from ${listFile} 2>/dev/null || test -s ${tar}`);
  run(`gzip -6 -c ${tar} > ${tar}.gz`);
  run(`zstd -3 -q -c ${tar} > ${tar}.zst`);
  const tarHash = await hashFile(tar);
  const tarSize = statSync(tar).size;
  const layer = async (format: 'gzip' | 'zstd', path: string): Promise<RealLayer> => ({
    format,
    path,
    size: statSync(path).size,
    compressed: await hashFile(path),
    tar: tarHash,
    tarSize,
  });
  const result = { gzip: await layer('gzip', `${tar}.gz`), zstd: await layer('zstd', `${tar}.zst`) };
  await rm(tar, { force: true });
  return result;
}

/**
 * A distinct blob of the layer: its stream followed by a second gzip member (or zstd frame)
 * holding 32 bytes of its own, which decompress after the tar's. Its digest and diff_id
 * resume from the base's hash states: nothing is rehashed.
 */
function variant(layer: RealLayer, tag: string): { body: () => AsyncIterable<Buffer>; digest: string; size: number; diffId: string } {
  const marker = createHash('sha256').update(tag).digest();
  const tail = layer.format === 'gzip' ? gzipSync(marker) : zstdFrame(marker);
  return {
    body: async function* () {
      for await (const chunk of createReadStream(layer.path, { highWaterMark: MiB })) yield chunk as Buffer;
      yield tail;
    },
    digest: `sha256:${layer.compressed.copy().update(tail).digest('hex')}`,
    size: layer.size + tail.length,
    diffId: `sha256:${layer.tar.copy().update(marker).digest('hex')}`,
  };
}

function zstdFrame(data: Buffer): Buffer {
  const compressor = new Compressor();
  compressor.setParameters({ checksumFlag: true });
  return compressor.compress(data);
}

let pushes = 0;

/**
 * k) One image of one real layer: the blob's upload (POST + PUT) and the whole push (until
 * the manifest is accepted, which with verification waits for the layer's decompression).
 */
export async function realLayerPush(reg: Registry, layer: RealLayer): Promise<{ uploadMBps: number; pushMBps: number }> {
  const repo = `bench/k-${layer.format}`;
  const v = variant(layer, `k-${reg.name}-${pushes++}-${randomBytes(4).toString('hex')}`);
  const config = imageConfig({ run: pushes }, [{ digest: v.diffId }]);
  await pushBlob(reg.url, repo, config, sha256(config), config.length);
  const start = performance.now();
  await pushBlob(reg.url, repo, v.body, v.digest, v.size);
  const uploaded = performance.now();
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: `application/vnd.oci.image.layer.v1.tar+${layer.format}`, digest: v.digest, size: v.size }],
    }),
  );
  await putManifest(reg.url, repo, `p${pushes}`, manifest);
  const done = performance.now();
  const head = await http(`${reg.url}/v2/${repo}/blobs/${v.digest}`, { method: 'HEAD' });
  check(head.status === 200 && Number(head.headers['content-length']) === v.size, `${reg.name} has ${v.digest}`);
  return { uploadMBps: v.size / MiB / ((uploaded - start) / 1000), pushMBps: v.size / MiB / ((done - start) / 1000) };
}

/** Decompression and hashing as the layer thread does it, per CPU-second of the process (MB/s in and out). */
export async function decompressRate(layer: RealLayer): Promise<{ inMBps: number; outMBps: number }> {
  // The built code, as Berth runs it: tsx's transform of the source adds helpers the thread's
  // program (run from its source text) would not find.
  const built = '../dist/blobstore/layer-thread.js';
  const { LayerThread } = (await import(built)) as typeof import('../src/blobstore/layer-thread.js');
  const thread = new LayerThread();
  try {
    await thread.inspect(layer.path, layer.size); // starts the thread
    const cpu = process.cpuUsage();
    const contents = await thread.inspect(layer.path, layer.size);
    const used = process.cpuUsage(cpu);
    const seconds = (used.user + used.system) / 1e6;
    check(contents.digest === `sha256:${layer.tar.copy().digest('hex')}`, `${layer.format} decompresses to the tar`);
    return { inMBps: layer.size / MiB / seconds, outMBps: layer.tarSize / MiB / seconds };
  } finally {
    await thread.terminate();
  }
}

/** l) Median latency of a manifest PUT naming 50 uploaded layers (a fresh config each time). */
export async function manifestPut50(reg: Registry): Promise<number> {
  const repo = 'bench/l';
  const layers = Array.from({ length: 50 }, () => randomBytes(4096));
  const descriptors = layers.map((l) => ({ digest: sha256(l), size: l.length }));
  for (let i = 0; i < layers.length; i++) await pushBlob(reg.url, repo, layers[i]!, descriptors[i]!.digest, 4096);
  let n = 0;
  const times: number[] = [];
  for (let i = 0; i < 40; i++) {
    const config = imageConfig({ n: n++, registry: reg.name }, descriptors);
    await pushBlob(reg.url, repo, config, sha256(config), config.length);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: descriptors.map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...d })),
      }),
    );
    const start = performance.now();
    await putManifest(reg.url, repo, `t${i}`, manifest);
    times.push(performance.now() - start);
  }
  return median(times.slice(5)); // the first few warm up
}

/** m) Berth with `count` repositories (written into its index directly), each image described. */
export async function searchIndex(count: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-search-'));
  await populateBerth(dir, count, (i) => `Image number ${i}`);
  return dir;
}

/** m) docker search latency: a term matching ten repositories, and one matching all of them (first page). */
export async function searchLatencies(reg: Registry, count: number): Promise<{ selectiveMs: number; broadMs: number; apiMs: number }> {
  const middle = repoName(Math.floor(count / 2)).slice(0, -1); // ten repositories share it
  const search = (q: string, expected: number) => async () => {
    const { body } = await getJson<{ num_results: number; results: { description: string }[] }>(`${reg.url}/v1/search?q=${encodeURIComponent(q)}&n=25`);
    check(body.num_results === expected && body.results[0]?.description.startsWith('Image number'), `search ${q}: ${body.num_results}`);
  };
  const selectiveMs = await latencyMs(search(middle, 10), 100, 5000);
  const broadMs = await latencyMs(search('scale/', count), 20, 10_000);
  const apiMs = await latencyMs(async () => {
    const { body } = await getJson<{ repositories: unknown[] }>(`${reg.url}/_berth/api/repositories?q=${encodeURIComponent(middle)}`);
    check(body.repositories.length === 10, 'API search');
  }, 100, 5000);
  return { selectiveMs, broadMs, apiMs };
}

