/**
 * The browse API under /_berth/api: shapes, sharing counts, pagination, errors, and
 * filtering by what the caller may pull; images stored before the index existed.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { MT, call, descriptor, expectError, gzipLayer, pushBlob, pushManifest, sha256, type Pushed } from '../helpers/oci.js';

interface Built {
  manifest: Pushed;
  config: Buffer;
  layers: { bytes: Buffer; diffId: string }[];
}

/** Pushes an image of `layers` with a config that has history (one empty-layer entry) and labels. */
async function pushImage(
  base: string,
  repo: string,
  tag: string,
  layers: { bytes: Buffer; diffId: string }[],
  options: { arch?: string; description?: string; annotations?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Built> {
  for (const l of layers) await pushBlob(base, repo, l.bytes);
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-02T03:04:05Z',
      author: 'tests',
      architecture: options.arch ?? 'amd64',
      os: 'linux',
      ...(options.arch === 'arm' && { variant: 'v7' }),
      config: {
        Env: ['PATH=/usr/bin'],
        Cmd: ['sh'],
        WorkingDir: '/srv',
        ExposedPorts: { '80/tcp': {} },
        Labels: { ...(options.description && { 'org.opencontainers.image.description': options.description }), tag },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: [
        ...layers.map((_, i) => ({ created: '2026-01-02T03:04:05Z', created_by: `ADD layer${i} /` })),
        { created: '2026-01-02T03:04:06Z', created_by: '/bin/sh -c #(nop) CMD ["sh"]', empty_layer: true },
      ],
    }),
  );
  await pushBlob(base, repo, config);
  const manifest = await pushManifest(
    base,
    repo,
    tag,
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociConfig, config),
      layers: layers.map((l) => descriptor(MT.ociLayer, l.bytes)),
      ...(options.annotations && { annotations: options.annotations }),
    },
    MT.ociManifest,
  );
  return { manifest, config, layers };
}

const api = async (reg: TestRegistry, path: string, headers: Record<string, string> = {}) => {
  const res = await call(reg.url, 'GET', `/_berth/api${path}`, { headers });
  expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  return res;
};
const ok = async (reg: TestRegistry, path: string, headers: Record<string, string> = {}) => {
  const res = await api(reg, path, headers);
  expect(res.status, res.text).toBe(200);
  return res.json();
};

describe('browse API (auth mode none)', () => {
  let reg: TestRegistry;
  const base = [gzipLayer(3000), gzipLayer(2000)];
  let app: Built;
  let web: Built;
  let tool: Built;
  let amd: Built;
  let arm: Built;
  let index: Pushed;
  let referrer: Pushed;

  beforeAll(async () => {
    reg = await startRegistry();
    app = await pushImage(reg.url, 'team/app', '1.0', [...base, gzipLayer(500)], { description: 'The app' });
    web = await pushImage(reg.url, 'team/web', 'latest', [...base, gzipLayer(700)], {
      annotations: { 'org.opencontainers.image.description': 'The web' },
    });
    tool = await pushImage(reg.url, 'other/tool', 'v1', [base[0]!]);
    amd = await pushImage(reg.url, 'team/multi', 'amd64', [base[0]!, gzipLayer(100)]);
    arm = await pushImage(reg.url, 'team/multi', 'arm', [base[0]!, gzipLayer(100)], { arch: 'arm' });
    index = await pushManifest(
      reg.url,
      'team/multi',
      '2.0',
      {
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [amd, arm].map((b, i) => ({
          mediaType: MT.ociManifest,
          digest: b.manifest.digest,
          size: b.manifest.bytes.length,
          platform: i === 0 ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm', variant: 'v7' },
        })),
      },
      MT.ociIndex,
    );
    await pushBlob(reg.url, 'team/app', '{}');
    referrer = await pushManifest(
      reg.url,
      'team/app',
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: MT.ociEmpty, digest: sha256('{}'), size: 2 },
        layers: [{ mediaType: MT.ociEmpty, digest: sha256('{}'), size: 2 }],
        subject: { mediaType: MT.ociManifest, digest: app.manifest.digest, size: app.manifest.bytes.length },
        annotations: { note: 'sbom' },
      },
      MT.ociManifest,
    );
  });
  afterAll(async () => {
    await reg?.close();
  });

  const imageBytes = (b: Built) => b.manifest.bytes.length + b.config.length + b.layers.reduce((n, l) => n + l.bytes.length, 0);

  it('lists repositories by name with their figures and description', async () => {
    const body = await ok(reg, '/repositories');
    expect(body.next).toBeNull();
    expect(body.repositories.map((r: { name: string }) => r.name)).toEqual(['other/tool', 'team/app', 'team/multi', 'team/web']);
    const teamApp = body.repositories[1];
    expect(teamApp).toMatchObject({ name: 'team/app', tagCount: 1, manifestCount: 2, description: 'The app' });
    // Distinct blobs (config, three layers, the empty blob) plus both manifests' own bytes.
    expect(teamApp.sizeBytes).toBe(imageBytes(app) + 2 + referrer.bytes.length);
    expect(Date.parse(teamApp.lastPushedAt)).toBeGreaterThan(Date.now() - 600_000);
    expect(body.repositories[3].description).toBe('The web');
    expect(body.repositories[0].description).toBeNull();
  });

  it('q matches repository names and tags, case-insensitively; n and last paginate', async () => {
    const names = async (q: string) => (await ok(reg, `/repositories?q=${encodeURIComponent(q)}`)).repositories.map((r: { name: string }) => r.name);
    expect(await names('TEAM/')).toEqual(['team/app', 'team/multi', 'team/web']);
    expect(await names('lates')).toEqual(['team/web']); // a tag
    expect(await names('oo')).toEqual(['other/tool']); // short: matched without the trigram index
    expect(await names('nothing-like-it')).toEqual([]);
    const first = await ok(reg, '/repositories?n=2');
    expect(first.repositories.map((r: { name: string }) => r.name)).toEqual(['other/tool', 'team/app']);
    expect(first.next).toEqual(expect.any(String));
    const second = await ok(reg, `/repositories?n=2&last=${encodeURIComponent(first.next)}`);
    expect(second.repositories.map((r: { name: string }) => r.name)).toEqual(['team/multi', 'team/web']);
    expect(second.next).toBeNull();
    expectError(await api(reg, '/repositories?n=zero'), 400, 'PAGINATION_NUMBER_INVALID');
  });

  it('one repository, with what the caller may do there', async () => {
    const body = await ok(reg, '/repositories/team/app');
    expect(body).toMatchObject({ name: 'team/app', tagCount: 1, manifestCount: 2, actions: { pull: true, push: true, delete: true } });
    expectError(await api(reg, '/repositories/no/such'), 404, 'NAME_UNKNOWN');
    expectError(await api(reg, '/repositories/Bad_Name'), 400, 'NAME_INVALID');
  });

  it('tags: digest, kind, platforms, size, pushedAt; an index lists its platforms', async () => {
    const tags = await ok(reg, '/repositories/team/multi/tags');
    expect(tags.next).toBeNull();
    expect(tags.tags.map((t: { name: string }) => t.name)).toEqual(['2.0', 'amd64', 'arm']);
    const [idx, amdTag, armTag] = tags.tags;
    expect(amdTag).toEqual({
      name: 'amd64',
      digest: amd.manifest.digest,
      mediaType: MT.ociManifest,
      kind: 'image',
      platforms: [{ os: 'linux', architecture: 'amd64', variant: null }],
      sizeBytes: imageBytes(amd),
      pushedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
    });
    expect(armTag.platforms).toEqual([{ os: 'linux', architecture: 'arm', variant: 'v7' }]);
    expect(idx).toMatchObject({ kind: 'index', mediaType: MT.ociIndex, digest: index.digest });
    expect(idx.platforms).toEqual([
      { os: 'linux', architecture: 'amd64', variant: null },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    // The index's bytes and its children's, the shared base layer once.
    expect(idx.sizeBytes).toBe(index.bytes.length + imageBytes(amd) + imageBytes(arm) - base[0]!.bytes.length);
    const page = await ok(reg, '/repositories/team/multi/tags?n=1&last=2.0');
    expect(page.tags.map((t: { name: string }) => t.name)).toEqual(['amd64']);
    expect(page.next).toBe('amd64');
  });

  it('manifests: newest first, tagged filter, referrer counts, cursor', async () => {
    const all = await ok(reg, '/repositories/team/app/manifests');
    expect(all.manifests.map((m: { digest: string }) => m.digest)).toEqual([referrer.digest, app.manifest.digest]);
    expect(all.manifests[1]).toMatchObject({ kind: 'image', artifactType: null, tags: ['1.0'], referrerCount: 1, subject: null });
    expect(all.manifests[0]).toMatchObject({
      kind: 'artifact',
      artifactType: 'application/vnd.example.sbom',
      subject: app.manifest.digest,
      tags: [],
      platforms: [],
    });
    const untagged = await ok(reg, '/repositories/team/app/manifests?tagged=false');
    expect(untagged.manifests.map((m: { digest: string }) => m.digest)).toEqual([referrer.digest]);
    const tagged = await ok(reg, '/repositories/team/app/manifests?tagged=true');
    expect(tagged.manifests.map((m: { digest: string }) => m.digest)).toEqual([app.manifest.digest]);
    const first = await ok(reg, '/repositories/team/app/manifests?n=1');
    expect(first.next).toEqual(expect.any(String));
    const second = await ok(reg, `/repositories/team/app/manifests?n=1&last=${first.next}`);
    expect(second.manifests.map((m: { digest: string }) => m.digest)).toEqual([app.manifest.digest]);
    expect(second.next).toBeNull();
  });

  it('an image in full: config, layers with diff_ids, sizes, history and sharing, referrers', async () => {
    const body = await ok(reg, '/repositories/team/app/manifests/1.0');
    expect(body).toMatchObject({
      repository: 'team/app',
      digest: app.manifest.digest,
      kind: 'image',
      tags: ['1.0'],
      sizeBytes: imageBytes(app),
      annotations: {},
      verification: 'verified',
      platforms: null,
    });
    expect(body.config).toEqual({
      digest: sha256(app.config),
      mediaType: MT.ociConfig,
      size: app.config.length,
      created: '2026-01-02T03:04:05Z',
      author: 'tests',
      os: 'linux',
      architecture: 'amd64',
      variant: null,
      entrypoint: null,
      cmd: ['sh'],
      env: ['PATH=/usr/bin'],
      workingDir: '/srv',
      user: null,
      labels: { 'org.opencontainers.image.description': 'The app', tag: '1.0' },
      exposedPorts: ['80/tcp'],
    });
    expect(body.layers).toEqual(
      app.layers.map((l, i) => ({
        index: i,
        digest: sha256(l.bytes),
        diffId: l.diffId,
        mediaType: MT.ociLayer,
        size: l.bytes.length,
        uncompressedSize: [3000, 2000, 500][i],
        createdBy: `ADD layer${i} /`,
        // base[0]: team/web, other/tool and both multi images; base[1]: team/web.
        sharedWith: [{ images: 4, repositories: 3 }, { images: 1, repositories: 1 }, { images: 0, repositories: 0 }][i],
      })),
    );
    expect(body.history).toHaveLength(4);
    expect(body.history[3]).toEqual({
      created: '2026-01-02T03:04:06Z',
      createdBy: '/bin/sh -c #(nop) CMD ["sh"]',
      comment: null,
      emptyLayer: true,
      layerIndex: null,
    });
    expect(body.history[2]).toMatchObject({ emptyLayer: false, layerIndex: 2 });
    expect(body.referrers).toEqual([
      { digest: referrer.digest, mediaType: MT.ociManifest, artifactType: 'application/vnd.example.sbom', size: referrer.bytes.length, annotations: { note: 'sbom' } },
    ]);
    // By digest too; an artifact's layers have no diff_id.
    expect((await ok(reg, `/repositories/team/app/manifests/${app.manifest.digest}`)).digest).toBe(app.manifest.digest);
    const artifact = await ok(reg, `/repositories/team/app/manifests/${referrer.digest}`);
    expect(artifact).toMatchObject({ kind: 'artifact', config: null, history: null, platforms: null });
    expect(artifact.layers[0]).toMatchObject({ diffId: null, uncompressedSize: null });
  });

  it('an index in full lists its platforms with their sizes', async () => {
    const body = await ok(reg, '/repositories/team/multi/manifests/2.0');
    expect(body).toMatchObject({ kind: 'index', config: null, layers: null, history: null });
    expect(body.platforms).toEqual([
      { digest: amd.manifest.digest, os: 'linux', architecture: 'amd64', variant: null, sizeBytes: imageBytes(amd) },
      { digest: arm.manifest.digest, os: 'linux', architecture: 'arm', variant: 'v7', sizeBytes: imageBytes(arm) },
    ]);
  });

  it('unknown manifests and tags -> 404 MANIFEST_UNKNOWN', async () => {
    expectError(await api(reg, '/repositories/team/app/manifests/nope'), 404, 'MANIFEST_UNKNOWN');
    expectError(await api(reg, `/repositories/team/app/manifests/${sha256('nope')}`), 404, 'MANIFEST_UNKNOWN');
    expectError(await api(reg, '/repositories/nope/manifests/1.0'), 404, 'NAME_UNKNOWN');
  });

  it('which images use a layer', async () => {
    const shared = sha256(base[1]!.bytes);
    const body = await ok(reg, `/layers/${shared}`);
    expect(body).toMatchObject({ digest: shared, size: base[1]!.bytes.length, uncompressedSize: 2000, diffId: base[1]!.diffId, mediaType: MT.ociLayer });
    expect(body.images).toEqual([
      { repository: 'team/app', digest: app.manifest.digest, tags: ['1.0'], index: 1, platform: { os: 'linux', architecture: 'amd64', variant: null } },
      { repository: 'team/web', digest: web.manifest.digest, tags: ['latest'], index: 1, platform: { os: 'linux', architecture: 'amd64', variant: null } },
    ]);
    expectError(await api(reg, `/layers/${sha256('unknown')}`), 404, 'BLOB_UNKNOWN');
    expect(tool.manifest.digest).toBeTruthy();
  });

  it('storage: stored once against what unshared images would take', async () => {
    const body = await ok(reg, '/storage');
    const blobs = new Map<string, number>();
    const images = [app, web, tool, amd, arm];
    let logical = 2; // the referrer's empty blob
    for (const b of images) {
      blobs.set(sha256(b.config), b.config.length);
      logical += b.config.length;
      for (const l of b.layers) {
        blobs.set(sha256(l.bytes), l.bytes.length);
        logical += l.bytes.length;
      }
    }
    const stored = [...blobs.values()].reduce((n, s) => n + s, 0) + 2;
    expect(body).toMatchObject({
      storedBytes: stored,
      logicalBytes: logical,
      savedBytes: logical - stored,
      manifestCount: 7,
      repositoryCount: 4,
      tagCount: 6,
      lastGc: null,
      mirror: null,
    });
    expect(body.blobCount).toBeGreaterThanOrEqual(blobs.size);
    expect(body.perRepository.map((r: { name: string }) => r.name)).toEqual(['other/tool', 'team/app', 'team/multi', 'team/web']);
    const tool_ = body.perRepository[0];
    expect(tool_).toEqual({ name: 'other/tool', totalBytes: tool.config.length + base[0]!.bytes.length, uniqueBytes: tool.config.length, sharedBytes: base[0]!.bytes.length });
    expect((await call(reg.url, 'POST', '/_berth/admin/gc')).status).toBe(200);
    expect((await ok(reg, '/storage')).lastGc).toMatchObject({ at: expect.any(String), durationMs: expect.any(Number), blobsRemoved: 0 });
  });

  it('docker search format at /v1/search', async () => {
    const res = await call(reg.url, 'GET', '/v1/search?q=team&n=2');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      num_results: 3,
      num_pages: 2,
      page: 1,
      page_size: 2,
      query: 'team',
      results: [
        { name: 'team/app', description: 'The app', star_count: 0, is_official: false, is_automated: false },
        { name: 'team/multi', description: '', star_count: 0, is_official: false, is_automated: false },
      ],
    });
    expect((await call(reg.url, 'GET', '/v1/search?q=team&n=2&page=2')).json().results.map((r: { name: string }) => r.name)).toEqual(['team/web']);
    expectError(await call(reg.url, 'GET', '/v1/search?q=team&page=0'), 400, 'PAGINATION_NUMBER_INVALID');
  });
});

describe('browse API with access rules (basic)', () => {
  let reg: TestRegistry;
  const alice = { authorization: basic('alice', 'wonderland') };
  const bob = { authorization: basic('bob', 'builder') };
  const shared = gzipLayer(1000);
  let open: Built;
  let secret: Built;

  beforeAll(async () => {
    reg = await startRegistry(
      {
        auth: {
          mode: 'basic',
          rules: [
            { repositories: ['**'], users: ['alice'], actions: ['pull', 'push', 'delete'] },
            { repositories: ['public/**'], users: ['*'], actions: ['pull'] },
          ],
        },
      },
      { users: [{ name: 'alice', password: 'wonderland' }, { name: 'bob', password: 'builder' }] },
    );
    open = await pushWithAuth(reg, 'public/app', [shared]);
    secret = await pushWithAuth(reg, 'private/app', [shared]);
  });
  afterAll(async () => {
    await reg?.close();
  });

  async function pushWithAuth(r: TestRegistry, repo: string, layers: { bytes: Buffer; diffId: string }[]): Promise<Built> {
    const { call: raw } = await import('../helpers/oci.js');
    for (const l of layers) {
      const res = await raw(r.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(l.bytes)}`, { headers: alice, body: l.bytes });
      expect(res.status).toBe(201);
    }
    const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, repo }));
    expect((await raw(r.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(config)}`, { headers: alice, body: config })).status).toBe(201);
    const m = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l.bytes)) };
    const bytes = Buffer.from(JSON.stringify(m));
    const put = await raw(r.url, 'PUT', `/v2/${repo}/manifests/1`, { headers: { ...alice, 'content-type': MT.ociManifest }, body: bytes });
    expect(put.status, put.text).toBe(201);
    return { manifest: { bytes, digest: sha256(bytes), mediaType: MT.ociManifest, json: m }, config, layers };
  }

  it('lists only what the caller may pull', async () => {
    const names = async (headers: Record<string, string>) => (await ok(reg, '/repositories', headers)).repositories.map((r: { name: string }) => r.name);
    expect(await names({})).toEqual(['public/app']);
    expect(await names(bob)).toEqual(['public/app']);
    expect(await names(alice)).toEqual(['private/app', 'public/app']);
    expect((await ok(reg, '/repositories/public/app', bob)).actions).toEqual({ pull: true, push: false, delete: false });
    expect((await ok(reg, '/repositories/public/app', alice)).actions).toEqual({ pull: true, push: true, delete: true });
  });

  it('a repository the caller may not pull answers as /v2 does: 401 with a challenge, or 403', async () => {
    const anonymous = expectError(await api(reg, '/repositories/private/app/tags'), 401, 'UNAUTHORIZED');
    expect(anonymous).toBeTruthy();
    expect((await api(reg, '/repositories/private/app')).headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expectError(await api(reg, '/repositories/private/app/manifests/1', bob), 403, 'DENIED');
    expectError(await api(reg, '/repositories/private/app', { authorization: basic('bob', 'wrong') }), 401, 'UNAUTHORIZED');
  });

  it('sharing counts, layer users, storage shares and search see only pullable repositories', async () => {
    const layer = sha256(shared.bytes);
    expect((await ok(reg, '/repositories/public/app/manifests/1', bob)).layers[0].sharedWith).toEqual({ images: 0, repositories: 0 });
    expect((await ok(reg, '/repositories/public/app/manifests/1', alice)).layers[0].sharedWith).toEqual({ images: 1, repositories: 1 });
    expect((await ok(reg, `/layers/${layer}`, bob)).images.map((i: { repository: string }) => i.repository)).toEqual(['public/app']);
    expect((await ok(reg, `/layers/${layer}`, alice)).images.map((i: { repository: string }) => i.repository)).toEqual(['private/app', 'public/app']);
    expectError(await api(reg, `/layers/${sha256(secret.config)}`, bob), 404, 'BLOB_UNKNOWN');
    const storage = await ok(reg, '/storage', bob);
    expect(storage.repositoryCount).toBe(2); // totals are registry-wide
    expect(storage.perRepository.map((r: { name: string }) => r.name)).toEqual(['public/app']);
    const search = await call(reg.url, 'GET', '/v1/search?q=app');
    expect(search.json().results.map((r: { name: string }) => r.name)).toEqual(['public/app']);
    const searchAlice = await call(reg.url, 'GET', '/v1/search?q=app', { headers: alice });
    expect(searchAlice.json().num_results).toBe(2);
    expect(open.manifest.digest).toBeTruthy();
  });
});

describe('images stored before the index existed', () => {
  it('are indexed at startup, once', async () => {
    const first = await startRegistry({}, { keepData: true });
    const layer = gzipLayer(1000);
    let built: Built;
    try {
      built = await pushImage(first.url, 'old/app', '1', [layer], { description: 'from before' });
    } finally {
      await first.close();
    }
    // As an index from before: no image rows.
    const db = new Database(join(first.dataDir, 'index.db'));
    db.exec('DELETE FROM images');
    db.close();
    const second = await startRegistry({}, { dataDir: first.dataDir });
    try {
      let body: any;
      for (let i = 0; i < 100; i++) {
        body = await ok(second, '/repositories/old/app/manifests/1');
        if (body.kind === 'image') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(body).toMatchObject({ kind: 'image', verification: 'unchecked' });
      expect(body.config).toMatchObject({ os: 'linux', architecture: 'amd64', labels: { 'org.opencontainers.image.description': 'from before' } });
      expect(body.layers[0]).toMatchObject({ digest: sha256(layer.bytes), diffId: layer.diffId });
      expect((await ok(second, '/repositories/old/app')).description).toBe('from before');
      expect(built!.manifest.digest).toBe(body.digest);
    } finally {
      await second.close();
      const { rm } = await import('node:fs/promises');
      await rm(first.dataDir, { recursive: true, force: true });
    }
  });
});
