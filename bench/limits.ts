import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { http } from './client.js';
import { freePort } from './registries.js';
import { ab, curlDownload, wrk } from './scenarios.js';

const MiB = 1024 * 1024;
const SERVER = fileURLToPath(new URL('./limits-server.ts', import.meta.url));

export interface Limits {
  sha256MBps: number;
  uploadHashMBps: number;
  downloadMBps: number;
  writeFsyncMBps: number;
  fileCreateMicros: number;
  requests: RequestCeiling;
}

/** What a bare Node server answers from memory under scenario f's load generators. */
export interface RequestCeiling {
  getRps: number;
  getP99ms: number;
  headRps: number;
  headP99ms: number;
}

function mbps(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

/** Single-core SHA-256 over 1 GiB of 1 MiB updates (node:crypto). */
export function sha256Ceiling(): number {
  const buf = randomBytes(MiB);
  const hash = createHash('sha256');
  const start = performance.now();
  for (let i = 0; i < 1024; i++) hash.update(buf);
  hash.digest();
  return mbps(1024 * MiB, performance.now() - start);
}

/** Sequential write of a new 1 GiB file in 1 MiB writes, then fsync: the sustained upload ceiling. */
export async function writeCeiling(dir = tmpdir()): Promise<number> {
  const path = join(dir, `bench-write-${process.pid}`);
  const buf = randomBytes(MiB);
  const start = performance.now();
  const handle = await open(path, 'w');
  for (let i = 0; i < 1024; i++) await handle.write(buf);
  await handle.sync();
  await handle.close();
  const ms = performance.now() - start;
  await rm(path, { force: true });
  return mbps(1024 * MiB, ms);
}

/**
 * Microseconds to create an empty file in a new directory under `dir`, which is left for
 * the caller to remove when it is done measuring: on ext4 without a journal, creating
 * files slows down for a minute or more wherever files were just deleted (the allocator
 * skips recently freed inodes), and removing these would charge the scenarios after it.
 * The figure itself shows what earlier deletions left: the registries' data directories
 * go in the same place.
 */
export async function fileCreation(dir = tmpdir()): Promise<{ micros: number; dir: string }> {
  const made = await mkdtemp(join(dir, 'bench-create-'));
  const count = 200;
  const start = performance.now();
  for (let i = 0; i < count; i++) await (await open(join(made, String(i)), 'w')).close();
  return { micros: ((performance.now() - start) * 1000) / count, dir: made };
}

/**
 * A bare Node server in its own process: hashes uploads, streams a file, answers a
 * small body from memory, nothing else.
 */
async function withLimitsServer<T>(work: (url: string) => Promise<T>): Promise<T> {
  const port = await freePort();
  const file = join(tmpdir(), `bench-download-${process.pid}`);
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, String(port), file], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  try {
    return await work(`http://127.0.0.1:${port}`);
  } finally {
    child.kill('SIGTERM');
    await rm(file, { force: true });
  }
}

/** Scenario f's load (wrk GET, ab HEAD, 64 connections) against the bare server: the ceiling of one Node process here. */
export function requestCeiling(seconds: number): Promise<RequestCeiling> {
  return withLimitsServer(async (url) => {
    wrk(`${url}/manifest`, 'GET', {}, 3); // warm-up, as scenario f does
    const get = wrk(`${url}/manifest`, 'GET', {}, seconds);
    const head = ab(`${url}/manifest`, seconds);
    return { getRps: get.rps, getP99ms: get.p99ms, headRps: head.rps, headP99ms: head.p99ms };
  });
}

export async function measureLimits(): Promise<Limits> {
  const sha256MBps = sha256Ceiling();
  const writeFsyncMBps = await writeCeiling();
  const creation = await fileCreation();
  await rm(creation.dir, { recursive: true, force: true });
  const { uploadHashMBps, downloadMBps } = await withLimitsServer(async (url) => {
    const chunk = randomBytes(MiB);
    const size = 1024 * MiB;
    const start = performance.now();
    await http(`${url}/upload`, {
      method: 'PUT',
      headers: { 'Content-Length': size },
      body: async function* () {
        for (let i = 0; i < 1024; i++) yield chunk;
      },
    });
    const upload = mbps(size, performance.now() - start);
    curlDownload(`${url}/download`, size); // warm the page cache
    return { uploadHashMBps: upload, downloadMBps: Math.max(curlDownload(`${url}/download`, size), curlDownload(`${url}/download`, size)) };
  });
  const requests = await requestCeiling(10);
  return { sha256MBps, uploadHashMBps, downloadMBps, writeFsyncMBps, fileCreateMicros: creation.micros, requests };
}

export function describeRequestCeiling(r: RequestCeiling): string {
  return `${r.getRps.toFixed(0)} GET/s (p99 ${r.getP99ms} ms), ${r.headRps.toFixed(0)} HEAD/s (p99 ${r.headP99ms} ms)`;
}

export function printLimits(limits: Limits): void {
  console.log('Machine ceilings (one run):');
  console.log(`  SHA-256, one core (node:crypto)            ${limits.sha256MBps.toFixed(0)} MB/s`);
  console.log(`  loopback HTTP upload into Node, hash only  ${limits.uploadHashMBps.toFixed(0)} MB/s`);
  console.log(`  loopback download, Node file stream, curl  ${limits.downloadMBps.toFixed(0)} MB/s`);
  console.log(`  sequential new-file write + fsync          ${limits.writeFsyncMBps.toFixed(0)} MB/s`);
  console.log(`  creating an empty file in the temp dir     ${limits.fileCreateMicros.toFixed(0)} µs`);
  console.log(`  bare Node server, small body, 64 conns     ${describeRequestCeiling(limits.requests)}`);
}
