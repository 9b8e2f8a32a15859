/**
 * The web UI end to end in a real browser (Chromium), on images pushed with skopeo: two
 * images sharing a base layer built with umoci. Finds them by search, checks the image
 * page's layer sizes, history and shared counts against what was pushed, deletes a tag
 * and sees it gone from /v2, and signs in as a pull-only user who gets no delete buttons.
 * Takes the README's screenshots of each page, light and dark.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../../web/src/format.js';
import { LAN_AUTH, USERS } from '../auth/lan.js';
import { eventually, launchBrowser, openContext, screenshot, screenshotDir, sharedBrowser } from '../helpers/browser.js';
import { offlineEnv, run } from '../helpers/exec.js';
import { buildBusyboxImage, buildImagesSharingBase, readBlob, writeIndex, type BuiltImage, type Config } from '../helpers/images.js';
import { call, MT, sha256 } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';

type Image = BuiltImage & { config: Config };

const alice = { authorization: basic(USERS.alice.name, USERS.alice.password) };

/** Pushes an SBOM-like artifact whose subject is `image`, untagged, as oras attach does; returns its digest. */
async function pushReferrer(url: string, repo: string, image: Image): Promise<string> {
  const empty = Buffer.from('{}');
  const sbom = Buffer.from(JSON.stringify({ packages: ['busybox'] }));
  for (const blob of [empty, sbom]) {
    const res = await call(url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { headers: { ...alice, 'content-type': 'application/octet-stream' }, body: blob });
    expect(res.status, res.text).toBe(201);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.sbom+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: 'application/vnd.example.sbom+json', digest: sha256(sbom), size: sbom.length }],
      subject: { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length },
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    }),
  );
  const res = await call(url, 'PUT', `/v2/${repo}/manifests/${sha256(manifest)}`, { headers: { ...alice, 'content-type': MT.ociManifest }, body: manifest });
  expect(res.status, res.text).toBe(201);
  return sha256(manifest);
}

async function signIn(page: Page, user: { name: string; password: string }): Promise<void> {
  await page.goto('/sign-in');
  await page.getByLabel('User name').fill(user.name);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** The names in the repositories table, once the status line says the list is loaded. */
async function listed(page: Page): Promise<string[]> {
  await eventually(() => page.getByRole('status').first().textContent()).toMatch(/^(Page \d+|No repositor)/);
  return page.locator('table .repo-name').allTextContents();
}

/** Text of each cell of a table column, by the cells' data-label. */
const column = (page: Page, table: string, label: string) => page.locator(`${table} tbody td[data-label="${label}"]`).allTextContents();

describe('web UI in Chromium', () => {
  let reg: TestRegistry;
  const chromium = sharedBrowser();
  let work: string;
  let images: Record<'app' | 'tool', Image>;
  let shots: Awaited<ReturnType<typeof screenshotDir>>;
  let sbom: string;

  const push = (name: string, repo: string, tag: string) =>
    run(
      'skopeo',
      ['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${USERS.alice.password}`, `oci:${join(work, 'layout')}:${name}`, `docker://${reg.host}/${repo}:${tag}`],
      { env: offlineEnv, timeoutMs: 120_000 },
    );

  beforeAll(async () => {
    shots = await screenshotDir();
    work = await mkdtemp(join(tmpdir(), 'berth-ui-e2e-'));
    images = (await buildImagesSharingBase(join(work, 'layout'), ['app', 'tool'], { workDir: work, ownBytes: 48 * 1024 })) as Record<'app' | 'tool', Image>;
    reg = await startRegistry({ auth: { mode: 'basic', ...LAN_AUTH } }, { users: [USERS.alice, USERS.reader] });
    await push('app', 'web/app', '1.0');
    await push('app', 'web/app', 'edge');
    await push('tool', 'web/tool', '1.0');
    await push('tool', 'internal/tool', '1.0'); // readable by signed-in users only
    sbom = await pushReferrer(reg.url, 'web/app', images.app);
  });
  afterAll(async () => {
    await chromium.close();
    await reg?.close();
    await shots?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('finds repositories by search as you type, by name and by tag, showing only what the user may pull', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url);
    try {
      await page.goto('/');
      // Anonymous: internal/** is not for them.
      expect(await listed(page)).toEqual(['web/app', 'web/tool']);
      await signIn(page, USERS.alice);
      await page.goto('/');
      expect(await listed(page)).toEqual(['internal/tool', 'web/app', 'web/tool']);
      const search = page.getByLabel('Search repositories and tags');
      await search.fill('tool');
      await eventually(() => page.locator('table .repo-name').allTextContents()).toEqual(['internal/tool', 'web/tool']);
      expect(new URL(page.url()).search).toBe('?q=tool');
      await search.fill('EDGE'); // a tag of web/app, any case
      await eventually(() => page.locator('table .repo-name').allTextContents()).toEqual(['web/app']);
      await search.fill('nothing-like-this');
      await eventually(() => page.getByRole('status').first().textContent()).toBe('No repository matches “nothing-like-this”.');
      await search.fill('');
      expect(await listed(page)).toEqual(['internal/tool', 'web/app', 'web/tool']);
      const row = page.locator('tbody tr', { has: page.locator('a', { hasText: 'web/app' }) });
      expect(await row.locator('td[data-label="Tags"]').textContent()).toBe('2');
      expect(await row.locator('.description').textContent()).toBe('The app image');
      for (const scheme of ['light', 'dark'] as const) await screenshot(page, shots.dir, 'repositories', scheme);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows an image: configuration, layers with their sizes and sharing, the layer stack, and history as docker history', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url);
    try {
      await signIn(page, USERS.alice);
      await page.goto('/repositories/web/app');
      await page.getByRole('link', { name: '1.0', exact: true }).click();
      await page.waitForURL('**/repositories/web/app:1.0');
      await page.locator('#layers tbody tr').first().waitFor();
      const app = images.app;

      // Layers bottom first, with the exact compressed and uncompressed sizes that were pushed.
      const layers = app.manifest.layers;
      expect(await page.locator('#layers tbody tr').count()).toBe(layers.length);
      expect(await page.locator('#layers td.compressed .bytes').evaluateAll((cells) => cells.map((c) => Number(c.getAttribute('data-bytes'))))).toEqual(
        layers.map((l) => l.size),
      );
      expect(await column(page, '#layers', 'Compressed')).toEqual(layers.map((l) => formatBytes(l.size)));
      const uncompressed = await Promise.all(layers.map(async (l) => gunzipSync(await readBlob(join(work, 'layout'), l.digest)).length));
      expect(await column(page, '#layers', 'Uncompressed')).toEqual(uncompressed.map((n) => formatBytes(n)));
      expect(await column(page, '#layers', 'Media type')).toEqual(layers.map((l) => l.mediaType));
      // The base layer is in the tool image too (pushed to web/tool and internal/tool); the top layer in no other image.
      expect(await column(page, '#layers', 'Shared with')).toEqual(['1 image in 2 other repositories', 'no other image']);

      // History newest first, as docker history prints it, with each step's layer size.
      const history = [...(app.config.history ?? [])].reverse();
      expect(await page.locator('#history td.created-by').allTextContents()).toEqual(history.map((h) => h.created_by ?? ''));
      expect(await column(page, '#history', 'Size')).toEqual(['0 B', formatBytes(uncompressed[1]!), formatBytes(uncompressed[0]!)]);

      // Berth checked the pushed layers against the config's diff_ids.
      expect(await page.locator('#verification').textContent()).toBe('verified against the config');
      // Configuration as pushed.
      expect(await page.locator('#env code').allTextContents()).toEqual(app.config.config?.Env ?? []);
      expect(await page.locator('#labels tbody tr td:nth-child(2)').allTextContents()).toEqual(['The app image']);
      expect(await page.locator('.config dt', { hasText: 'Command' }).locator('xpath=following-sibling::dd').textContent()).toBe('["/opt/app/run"]');

      // The stack: the bottom layer is a base shared with both tool images.
      const stack = page.getByRole('img', { name: '2 layers, 1 shared with other images; the bottom layer is a base other images share' });
      await stack.waitFor();
      await eventually(() => page.locator('figure.stack figcaption p').textContent()).toBe(
        'Base: the bottom layer is also the bottom of internal/tool:1.0, web/tool:1.0.',
      );
      // Its referrer, the SBOM attached to it.
      expect(await column(page, '#referrers-table', 'Artifact type')).toEqual(['application/vnd.example.sbom+json']);
      expect(await page.locator('#referrers-table td[data-label="Digest"] code').getAttribute('title')).toBe(sbom);
      for (const scheme of ['light', 'dark'] as const) await screenshot(page, shots.dir, 'image', scheme);

      // "Shared with" leads to the layer's page, listing every image using it.
      await page.locator('#layers td.shared a').first().click();
      await page.waitForURL(`**/layers/${layers[0]!.digest}`);
      await page.locator('#layer-images tbody tr').first().waitFor();
      expect((await column(page, '#layer-images', 'Image')).sort()).toEqual(['internal/tool:1.0', 'web/app:1.0, edge', 'web/tool:1.0']);
      expect(await column(page, '#layer-images', 'Layer #')).toEqual(['0', '0', '0']);
      for (const scheme of ['light', 'dark'] as const) await screenshot(page, shots.dir, 'layer', scheme);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('deletes a tag after a confirmation naming it; /v2 no longer lists it', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url);
    try {
      await signIn(page, USERS.alice);
      await page.goto('/repositories/web/app');
      await page.locator('#tags tbody tr').first().waitFor();
      expect(await column(page, '#tags', 'Tag')).toEqual(['1.0', 'edge']);
      const copy = page.locator('tr[data-tag="1.0"] button', { hasText: 'Copy pull' });
      expect(await copy.getAttribute('data-copy')).toBe(`docker pull ${reg.host}/web/app:1.0`);
      expect(await page.locator('tr[data-tag="1.0"] button', { hasText: 'Copy @digest' }).getAttribute('data-copy')).toBe(
        `docker pull ${reg.host}/web/app@${images.app.digest}`,
      );
      expect(await column(page, '#tags', 'Referrers')).toEqual(['1', '1']);
      // The SBOM is the repository's one untagged manifest, shown with what it refers to.
      expect(await page.locator('#untagged td[data-label="Digest"] code').allTextContents()).toEqual([`sha256:${sbom.slice(7, 19)}`]);
      expect(await column(page, '#untagged', 'Kind')).toEqual([`application/vnd.example.sbom+json for sha256:${images.app.digest.slice(7, 19)}`]);
      for (const scheme of ['light', 'dark'] as const) await screenshot(page, shots.dir, 'repository', scheme);

      await page.getByRole('button', { name: 'Delete tag edge' }).click();
      const dialog = page.getByRole('dialog', { name: 'Delete tag edge?' });
      await dialog.waitFor();
      expect(await dialog.textContent()).toContain('web/app:edge');
      // Escape cancels: nothing goes.
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      expect((await call(reg.url, 'GET', '/v2/web/app/tags/list', { headers: alice })).json().tags).toEqual(['1.0', 'edge']);

      await page.getByRole('button', { name: 'Delete tag edge' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Delete tag' }).click();
      await eventually(() => column(page, '#tags', 'Tag')).toEqual(['1.0']);
      const tags = await call(reg.url, 'GET', '/v2/web/app/tags/list');
      expect(tags.json().tags).toEqual(['1.0']);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows storage with the bytes sharing saves, and lets an administrator preview a collection', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url);
    try {
      await signIn(page, USERS.alice);
      await page.goto('/storage');
      await page.locator('#per-repository tbody tr').first().waitFor();
      expect((await column(page, '#per-repository', 'Repository')).sort()).toEqual(['internal/tool', 'web/app', 'web/tool']);
      await page.getByRole('button', { name: 'Preview collection' }).click();
      await eventually(() => page.locator('.gc [role=status]').textContent()).toMatch(/^A collection would free /);
      for (const scheme of ['light', 'dark'] as const) await screenshot(page, shots.dir, 'storage', scheme);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a pull-only user sees no delete or collection buttons', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url);
    try {
      await signIn(page, USERS.reader);
      await page.goto('/repositories/web/tool');
      await page.locator('#tags tbody tr').first().waitFor();
      expect(await page.getByRole('button', { name: /Delete/ }).count()).toBe(0);
      await page.goto('/repositories/web/tool:1.0');
      await page.locator('#layers tbody tr').first().waitFor();
      expect(await page.getByRole('button', { name: /Delete/ }).count()).toBe(0);
      await page.goto('/storage');
      await page.locator('#totals').waitFor();
      expect(await page.getByRole('button', { name: /collect/i }).count()).toBe(0);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('link', { name: 'Sign in' }).waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('is readable at 360 px: nothing wider than the screen, tables as cards', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url, { width: 360 });
    try {
      await signIn(page, USERS.alice);
      for (const path of ['/', '/repositories/web/app', '/repositories/web/app:1.0', '/storage']) {
        await page.goto(path);
        await page.locator('main table tbody tr').first().waitFor();
        expect(await page.evaluate(() => document.documentElement.scrollWidth), path).toBeLessThanOrEqual(360);
        expect(await page.locator("main table.cards thead").first().boundingBox(), path).toMatchObject({ height: 1 });
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe('web UI in Chromium, mode none', () => {
  it('shows everything without signing in, with the administrator actions; an index shows its platforms', async () => {
    const browser = await launchBrowser();
    const reg = await startRegistry();
    const work = await mkdtemp(join(tmpdir(), 'berth-ui-none-'));
    try {
      const layout = join(work, 'layout');
      await buildImagesSharingBase(layout, ['solo'], { workDir: work });
      const skopeo = (args: string[]) => run('skopeo', ['copy', '--dest-tls-verify=false', ...args], { env: offlineEnv, timeoutMs: 120_000 });
      await skopeo([`oci:${layout}:solo`, `docker://${reg.host}/any/solo:1`]);
      const multi = join(work, 'multi');
      const amd64 = await buildBusyboxImage(multi, 'amd64', { workDir: work, architecture: 'amd64' });
      const arm64 = await buildBusyboxImage(multi, 'arm64', { workDir: work, architecture: 'arm64' });
      await writeIndex(multi, 'both', [amd64, arm64]);
      await skopeo(['--all', `oci:${multi}:both`, `docker://${reg.host}/any/multi:1`]);

      const { context, page, problems } = await openContext(browser, reg.url);
      await page.goto('/repositories/any/multi:1');
      await page.locator('#platforms tbody tr').first().waitFor();
      expect(await column(page, '#platforms', 'Platform')).toEqual(['linux/amd64', 'linux/arm64']);
      await page.locator('#platforms tbody tr').nth(1).getByRole('link').click();
      await page.waitForURL(`**/repositories/any/multi@${arm64.digest}`);
      await page.locator('#layers tbody tr').first().waitFor();
      expect(await page.locator('.config dt', { hasText: 'Platform' }).locator('xpath=following-sibling::dd').textContent()).toBe('linux/arm64');

      await page.goto('/');
      expect(await listed(page)).toEqual(['any/multi', 'any/solo']);
      expect(await page.getByRole('link', { name: 'Sign in' }).count()).toBe(0);
      await page.goto('/repositories/any/solo');
      await page.getByRole('button', { name: 'Delete tag 1' }).waitFor();
      await page.goto('/storage');
      await page.getByRole('button', { name: 'Collect garbage now' }).waitFor();
      expect(problems).toEqual([]);
      await context.close();
    } finally {
      await browser.close();
      await reg.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});
