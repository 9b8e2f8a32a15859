import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { OCI_MANIFEST, pushBlob, putManifest, sha256 } from './client.js';
import { populateBerth, repoName } from './populate.js';
import { startBerth } from './registries.js';

const RUNS = 3;

export interface PageLoad {
  page: string;
  /** From the navigation's start until the page shows its content and answers input. */
  interactiveMs: number;
  /** Bytes on the wire (compressed bodies and headers) of every request the load made. */
  transferredBytes: number;
}

/** A gzipped tar layer of one file of `size` random bytes, with its diff ID. */
function layer(work: string, name: string, size: number): { gz: Buffer; diffId: string } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.bin`), randomBytes(size));
  const tar = join(work, `${name}.tar`);
  const made = spawnSync('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.']);
  if (made.status !== 0) throw new Error(`tar failed: ${made.stderr.toString()}`);
  const bytes = readFileSync(tar);
  return { gz: gzipSync(bytes), diffId: sha256(bytes) };
}

/** Two images sharing a base layer (bench/app:1.0 and bench/tool:1.0), pushed over HTTP like any client would. */
async function pushImages(url: string, work: string): Promise<void> {
  const base = layer(work, 'base', 2_000_000);
  for (const [repo, own] of [
    ['bench/app', layer(work, 'app', 300_000)],
    ['bench/tool', layer(work, 'tool', 100_000)],
  ] as const) {
    const layers = [base, own];
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2026-01-01T00:00:00Z',
        config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'], Labels: { 'org.opencontainers.image.description': repo } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: [
          { created: '2026-01-01T00:00:00Z', created_by: 'ADD base.tar /' },
          { created: '2026-01-01T00:00:00Z', created_by: `COPY ${repo} /` },
          { created: '2026-01-01T00:00:00Z', created_by: 'CMD ["/bin/sh"]', empty_layer: true },
        ],
      }),
    );
    const blobs = [config, ...layers.map((l) => l.gz)];
    for (const blob of blobs) await pushBlob(url, repo, blob, sha256(blob), blob.length);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l.gz), size: l.gz.length })),
      }),
    );
    await putManifest(url, repo, '1.0', manifest);
  }
}

/**
 * Loads `path` in a fresh browser context (nothing cached) until `ready` (a CSS selector)
 * matches. The time is the page's own clock from the start of its navigation (the
 * Navigation Timing origin) until the frame in which the content first shows, so the
 * browser's process start-up and the harness's round trips are not counted.
 */
async function load(browser: Browser, url: string, path: string, ready: string): Promise<{ page: Page; result: Omit<PageLoad, 'page'>; close(): Promise<void> }> {
  // The page's CSP forbids evaluating strings; the harness's own probes are let through.
  const context = await browser.newContext({ baseURL: url, viewport: { width: 1280, height: 900 }, bypassCSP: true });
  const page = await context.newPage();
  const sizes: Array<Promise<number>> = [];
  page.on('requestfinished', (request) => {
    sizes.push(request.sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
  });
  await page.goto(path, { waitUntil: 'commit' });
  const shown = await page.waitForFunction(`document.querySelector(${JSON.stringify(ready)}) ? performance.now() : 0`, undefined, { polling: 'raf', timeout: 60_000 });
  const interactiveMs = (await shown.jsonValue()) as number;
  // Requests still in flight (none, normally) finish before the bytes are counted.
  await page.waitForLoadState('networkidle');
  const transferredBytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  return { page, result: { interactiveMs, transferredBytes }, close: () => context.close() };
}

/**
 * Scenario u: the web UI on a registry of `count` repositories (written straight into the
 * index, as for scenario j) plus two images sharing a base pushed over HTTP: time to interactive and
 * bytes transferred of each page's first load with an empty browser cache (the median of
 * three, after one warm-up load), and the time a search takes to show its result once typed.
 */
export async function uiPageLoads(count: number): Promise<PageLoad[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-ui-'));
  const work = await mkdtemp(join(tmpdir(), 'bench-ui-layers-'));
  await populateBerth(dir, count);
  const berth = await startBerth(dir);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  const results: PageLoad[] = [];
  try {
    await pushImages(berth.url, work);
    // Each figure is the median of RUNS loads, each in a fresh context (an empty cache).
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const measure = async (name: string, path: string, ready: string, after?: (page: Page) => Promise<PageLoad>) => {
      const loads: PageLoad[] = [];
      const afters: PageLoad[] = [];
      for (let run = 0; run < RUNS; run++) {
        const loaded = await load(browser, berth.url, path, ready);
        loads.push({ page: name, ...loaded.result });
        if (after) afters.push(await after(loaded.page));
        await loaded.close();
      }
      results.push({ page: name, interactiveMs: median(loads.map((l) => l.interactiveMs)), transferredBytes: median(loads.map((l) => l.transferredBytes)) });
      if (after) results.push({ page: afters[0]!.page, interactiveMs: median(afters.map((l) => l.interactiveMs)), transferredBytes: 0 });
    };
    // Warm-up, not measured: the browser's first page and Berth's first requests compile their code.
    await (await load(browser, berth.url, '/sign-in', 'h1')).close();
    const middle = repoName(Math.floor(count / 2));
    await measure('repositories', '/', 'table tbody tr', async (page) => {
      // Search as you type, on the page's clock: from the input event until the one match is the only row.
      // A string, not a function: tsx's name helpers do not exist in the page.
      const ms = (await page.evaluate(`new Promise((resolve) => {
        const input = document.querySelector('#search');
        const start = performance.now();
        input.value = ${JSON.stringify(middle)};
        input.dispatchEvent(new Event('input', { bubbles: true }));
        const check = () => {
          const rows = document.querySelectorAll('table tbody tr');
          if (rows.length === 1 && rows[0].querySelector('a[href="/repositories/${middle}"]')) resolve(performance.now() - start);
          else requestAnimationFrame(check);
        };
        requestAnimationFrame(check);
      })`)) as number;
      return { page: `  search "${middle}"`, interactiveMs: ms, transferredBytes: 0 };
    });
    await measure('repository', `/repositories/${middle}`, '#tags tbody tr');
    await measure('image', '/repositories/bench/app:1.0', '#layers tbody tr:nth-child(2)');
    await measure('storage', '/storage', '#per-repository tbody tr');
  } finally {
    await browser.close();
    await berth.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
  return results;
}
