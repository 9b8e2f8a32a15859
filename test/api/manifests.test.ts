import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  EMPTY_BLOB,
  MT,
  call,
  descriptor,
  expectApiVersion,
  expectError,
  expectHeadError,
  gzipLayer,
  imageConfig,
  imageManifest,
  locationPath,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  sha256,
  uniq,
  type Pushed,
} from '../helpers/oci.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

const mpath = (repo: string, ref: string) => `/v2/${repo}/manifests/${ref}`;

/** What Docker, containerd and ORAS send when pulling. */
const ACCEPT = { accept: [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ') };

async function expectManifest(r: TestRegistry, repo: string, ref: string, m: Pushed) {
  for (const method of ['GET', 'HEAD']) {
    const res = await call(r.url, method, mpath(repo, ref), { headers: ACCEPT });
    expect(res.status, `${method} ${ref}`).toBe(200);
    expectApiVersion(res);
    expect(res.headers.get('content-type')).toBe(m.mediaType);
    expect(res.headers.get('content-length')).toBe(String(m.bytes.length));
    expect(res.headers.get('docker-content-digest')).toBe(m.digest);
    expect(res.headers.get('etag') ?? '').toContain(m.digest);
    if (method === 'GET') expect(res.body.equals(m.bytes)).toBe(true);
    else expect(res.body.length).toBe(0);
  }
}

async function expectNoManifest(r: TestRegistry, repo: string, ref: string) {
  const res = await call(r.url, 'GET', mpath(repo, ref), { headers: ACCEPT });
  expect(res.status).toBe(404);
  expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain(res.json().errors[0].code);
  expectHeadError(await call(r.url, 'HEAD', mpath(repo, ref), { headers: ACCEPT }), 404);
}

async function tagsOf(r: TestRegistry, repo: string): Promise<string[]> {
  const res = await call(r.url, 'GET', `/v2/${repo}/tags/list`);
  expect(res.status).toBe(200);
  return res.json().tags ?? [];
}

describe('PUT each supported media type', () => {
  it('docker v2 schema 2 -> 201 with Location and Docker-Content-Digest; GET/HEAD by tag and digest', async () => {
    const repo = uniq('m');
    const m = await imageManifest(reg.url, repo, 'docker');
    const bytes = Buffer.from(JSON.stringify(m, null, 4));
    const digest = sha256(bytes);
    const res = await putManifest(reg.url, repo, 'latest', bytes, MT.dockerManifest);
    expect(res.status, res.text).toBe(201);
    expectApiVersion(res);
    expect(locationPath(res, reg.url)).toBe(`/v2/${repo}/manifests/${digest}`);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('oci-subject')).toBeNull();
    const pushed = { bytes, digest, mediaType: MT.dockerManifest, json: m };
    await expectManifest(reg, repo, 'latest', pushed);
    await expectManifest(reg, repo, digest, pushed);
    expect(await tagsOf(reg, repo)).toEqual(['latest']);
  });

  it('docker manifest list -> 201', async () => {
    const repo = uniq('m');
    const amd = await pushImage(reg.url, repo, undefined, 'docker');
    const arm = await pushImage(reg.url, repo, undefined, 'docker');
    const list = {
      schemaVersion: 2,
      mediaType: MT.dockerList,
      manifests: [
        { mediaType: MT.dockerManifest, digest: amd.digest, size: amd.bytes.length, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: MT.dockerManifest, digest: arm.digest, size: arm.bytes.length, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    };
    const pushed = await pushManifest(reg.url, repo, 'multi', list, MT.dockerList);
    await expectManifest(reg, repo, 'multi', pushed);
    await expectManifest(reg, repo, pushed.digest, pushed);
  });

  it('OCI image manifest -> 201', async () => {
    const repo = uniq('m');
    const m = await imageManifest(reg.url, repo, 'oci', { annotations: { 'org.example': 'x' } });
    const pushed = await pushManifest(reg.url, repo, 'v1.0', m, MT.ociManifest);
    await expectManifest(reg, repo, 'v1.0', pushed);
    await expectManifest(reg, repo, pushed.digest, pushed);
  });

  it('OCI index -> 201', async () => {
    const repo = uniq('m');
    const a = await pushImage(reg.url, repo);
    const b = await pushImage(reg.url, repo);
    const index = {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        { mediaType: MT.ociManifest, digest: a.digest, size: a.bytes.length, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: MT.ociManifest, digest: b.digest, size: b.bytes.length, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    };
    const pushed = await pushManifest(reg.url, repo, 'idx', index, MT.ociIndex);
    await expectManifest(reg, repo, 'idx', pushed);
    await expectManifest(reg, repo, pushed.digest, pushed);
  });

  it('nested OCI index (index of an index) -> 201', async () => {
    const repo = uniq('m');
    const a = await pushImage(reg.url, repo);
    const inner = await pushManifest(
      reg.url,
      repo,
      undefined,
      { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: a.digest, size: a.bytes.length }] },
      MT.ociIndex,
    );
    const outer = await pushManifest(
      reg.url,
      repo,
      'outer',
      { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociIndex, digest: inner.digest, size: inner.bytes.length }] },
      MT.ociIndex,
    );
    await expectManifest(reg, repo, 'outer', outer);
  });

  it('OCI artifact with artifactType and the empty config -> 201', async () => {
    const repo = uniq('m');
    await pushBlob(reg.url, repo, EMPTY_BLOB);
    const layer = Buffer.from('{"sbom":true}');
    await pushBlob(reg.url, repo, layer);
    const artifact = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.sbom.v1+json',
      config: { mediaType: MT.ociEmpty, digest: sha256(EMPTY_BLOB), size: 2, data: 'e30=' },
      layers: [descriptor('application/vnd.example.sbom.v1+json', layer)],
    };
    const pushed = await pushManifest(reg.url, repo, 'sbom', artifact, MT.ociManifest);
    await expectManifest(reg, repo, 'sbom', pushed);
  });

  it('artifact with no layers but the empty layer -> 201', async () => {
    const repo = uniq('m');
    await pushBlob(reg.url, repo, EMPTY_BLOB);
    const emptyDesc = { mediaType: MT.ociEmpty, digest: sha256(EMPTY_BLOB), size: 2 };
    const pushed = await pushManifest(
      reg.url,
      repo,
      'empty',
      { schemaVersion: 2, mediaType: MT.ociManifest, artifactType: 'application/vnd.example.thing', config: emptyDesc, layers: [emptyDesc] },
      MT.ociManifest,
    );
    await expectManifest(reg, repo, 'empty', pushed);
  });

  it('Content-Type missing -> media type taken from the body', async () => {
    const repo = uniq('m');
    const m = await imageManifest(reg.url, repo, 'oci');
    const bytes = Buffer.from(JSON.stringify(m));
    const res = await putManifest(reg.url, repo, 'noct', bytes);
    expect(res.status, res.text).toBe(201);
    const get = await call(reg.url, 'GET', mpath(repo, 'noct'), { headers: ACCEPT });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(MT.ociManifest);
    expect(get.body.equals(bytes)).toBe(true);
  });

  it('GET without an Accept header still returns the stored bytes and media type', async () => {
    const repo = uniq('m');
    const img = await pushImage(reg.url, repo, 'plain', 'docker');
    for (const ref of ['plain', img.digest]) {
      const res = await call(reg.url, 'GET', mpath(repo, ref));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(MT.dockerManifest);
      expect(res.headers.get('docker-content-digest')).toBe(img.digest);
      expect(res.body.equals(img.bytes)).toBe(true);
    }
  });

  it('PUT by digest reference -> 201 without creating a tag', async () => {
    const repo = uniq('m');
    const first = await pushImage(reg.url, repo, 'keep');
    const m = await imageManifest(reg.url, repo);
    const pushed = await pushManifest(reg.url, repo, undefined, m, MT.ociManifest); // ref = its digest
    await expectManifest(reg, repo, pushed.digest, pushed);
    expect(await tagsOf(reg, repo)).toEqual(['keep']);
    await expectManifest(reg, repo, 'keep', first);
  });

  it('re-PUT of identical bytes under another tag -> 201, both tags resolve', async () => {
    const repo = uniq('m');
    const a = await pushImage(reg.url, repo, 'one');
    const res = await putManifest(reg.url, repo, 'two', a.bytes, a.mediaType);
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(a.digest);
    await expectManifest(reg, repo, 'two', a);
    expect(await tagsOf(reg, repo)).toEqual(['one', 'two']);
  });

  it('foreign layers with urls are accepted without the blob', async () => {
    const repo = uniq('m');
    const layer = gzipLayer();
    await pushBlob(reg.url, repo, layer.bytes);
    // The foreign layer's diff_id cannot be checked without its bytes: any digest passes.
    const config = imageConfig([sha256(randomBlob(10)), layer.diffId]);
    await pushBlob(reg.url, repo, config);
    const m = {
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: descriptor(MT.dockerConfig, config),
      layers: [
        { mediaType: MT.dockerForeignLayer, digest: sha256(randomBlob(10)), size: 10, urls: ['https://example.com/layer.tar.gz'] },
        descriptor(MT.dockerLayer, layer.bytes),
      ],
    };
    const pushed = await pushManifest(reg.url, repo, 'foreign', m, MT.dockerManifest);
    await expectManifest(reg, repo, 'foreign', pushed);
  });

  it('subject -> 201 with OCI-Subject header (subject need not exist)', async () => {
    const repo = uniq('m');
    const subject = await pushImage(reg.url, repo, 'base');
    await pushBlob(reg.url, repo, EMPTY_BLOB);
    const emptyDesc = { mediaType: MT.ociEmpty, digest: sha256(EMPTY_BLOB), size: 2 };
    const withSubject = (d: string, size: number) => ({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.sig',
      config: emptyDesc,
      layers: [emptyDesc],
      subject: { mediaType: MT.ociManifest, digest: d, size },
    });
    const bytes = Buffer.from(JSON.stringify(withSubject(subject.digest, subject.bytes.length)));
    const res = await putManifest(reg.url, repo, sha256(bytes), bytes, MT.ociManifest);
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('oci-subject')).toBe(subject.digest);

    const dangling = sha256(randomBlob(10));
    const bytes2 = Buffer.from(JSON.stringify(withSubject(dangling, 123)));
    const res2 = await putManifest(reg.url, repo, sha256(bytes2), bytes2, MT.ociManifest);
    expect(res2.status, res2.text).toBe(201);
    expect(res2.headers.get('oci-subject')).toBe(dangling);
  });
});

describe('PUT failures store nothing', () => {
  // a fresh repository per test, so a wrongly accepted PUT cannot spill into other tests
  let repo: string;
  let good: any;
  let previous: Pushed;
  beforeEach(async () => {
    repo = uniq('bad');
    previous = await pushImage(reg.url, repo, 'stable');
    good = await imageManifest(reg.url, repo, 'oci');
  });

  /** The tag keeps pointing at the previous manifest and `ref` was not created. */
  async function unchanged(ref: string, digest?: string) {
    await expectManifest(reg, repo, 'stable', previous);
    if (ref !== 'stable') await expectNoManifest(reg, repo, ref);
    if (digest) await expectNoManifest(reg, repo, digest);
    expect(await tagsOf(reg, repo)).toEqual(['stable']);
  }

  it('digest reference not matching the body -> 400 DIGEST_INVALID', async () => {
    const bytes = Buffer.from(JSON.stringify(good));
    const other = sha256(randomBlob(8));
    const res = await putManifest(reg.url, repo, other, bytes, MT.ociManifest);
    expectError(res, 400, 'DIGEST_INVALID');
    await unchanged('stable', other);
    await expectNoManifest(reg, repo, sha256(bytes));
  });

  it('malformed digest reference on PUT -> 400', async () => {
    const bytes = Buffer.from(JSON.stringify(good));
    const res = await putManifest(reg.url, repo, `sha256:${'z'.repeat(64)}`, bytes, MT.ociManifest);
    expect(res.status).toBe(400);
    expect(['DIGEST_INVALID', 'MANIFEST_INVALID']).toContain(res.json().errors[0].code);
    await unchanged('stable', sha256(bytes));
  });

  it.each([
    ['-leadingdash'],
    ['.hidden'],
    ['t'.repeat(129)],
    ['bad!tag'],
    ['tag+plus'],
  ])('invalid tag %s -> 400 MANIFEST_INVALID on PUT, 404 MANIFEST_UNKNOWN on GET/HEAD/DELETE', async (tag) => {
    const bytes = Buffer.from(JSON.stringify(good));
    expectError(await putManifest(reg.url, repo, encodeURIComponent(tag), bytes, MT.ociManifest), 400, 'MANIFEST_INVALID');
    expectError(await call(reg.url, 'GET', mpath(repo, encodeURIComponent(tag)), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', mpath(repo, encodeURIComponent(tag)), { headers: ACCEPT }), 404);
    expectError(await call(reg.url, 'DELETE', mpath(repo, encodeURIComponent(tag))), 404, 'MANIFEST_UNKNOWN');
    await unchanged('stable', sha256(bytes));
  });

  it('a 128-character tag and one starting with _ are valid', async () => {
    const r = uniq('tags');
    const img = await pushImage(reg.url, r, 'T'.repeat(128));
    await expectManifest(reg, r, 'T'.repeat(128), img);
    await pushManifest(reg.url, r, '_under.score-1', img.json, MT.ociManifest);
    expect(await tagsOf(reg, r)).toEqual(['T'.repeat(128), '_under.score-1']);
  });

  it.each([
    ['not json', 'this is not json'],
    ['truncated', '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"'],
    ['empty body', ''],
    ['json array', '[]'],
    ['json string', '"manifest"'],
    ['null', 'null'],
  ])('invalid JSON (%s) -> 400 MANIFEST_INVALID', async (_name, body) => {
    const res = await putManifest(reg.url, repo, 'stable', body, MT.ociManifest);
    expectError(res, 400, 'MANIFEST_INVALID');
    await unchanged('stable', sha256(body));
  });

  const shapes: Array<[string, (g: any) => any, string?]> = [
    ['schemaVersion 3', (g) => ({ ...g, schemaVersion: 3 })],
    ['schemaVersion missing', ({ schemaVersion: _s, ...rest }) => rest],
    ['config missing', ({ config: _c, ...rest }) => rest],
    ['layers not an array', (g) => ({ ...g, layers: {} })],
    ['layers missing', ({ layers: _l, ...rest }) => rest],
    ['config digest malformed', (g) => ({ ...g, config: { ...g.config, digest: 'sha256:nope' } })],
    ['layer size negative', (g) => ({ ...g, layers: [{ ...g.layers[0], size: -1 }] })],
    ['layer size a string', (g) => ({ ...g, layers: [{ ...g.layers[0], size: '12' }] })],
    ['layer mediaType missing', (g) => ({ ...g, layers: [{ digest: g.layers[0].digest, size: g.layers[0].size }] })],
    ['manifest sent as an index', (g) => g, MT.ociIndex],
    ['unsupported Content-Type', (g) => ({ ...g, mediaType: undefined }), 'application/vnd.example.unknown+json'],
    ['index without manifests', () => ({ schemaVersion: 2, mediaType: MT.ociIndex }), MT.ociIndex],
    ['index manifests not an array', () => ({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: 'x' }), MT.ociIndex],
  ];

  it.each(shapes)('wrong shape (%s) -> 400 MANIFEST_INVALID', async (_name, mutate, ct) => {
    const body = Buffer.from(JSON.stringify(mutate(structuredClone(good))));
    const res = await putManifest(reg.url, repo, 'stable', body, ct === undefined ? MT.ociManifest : ct || undefined);
    expectError(res, 400, 'MANIFEST_INVALID');
    await unchanged('stable', sha256(body));
  });

  it.each([
    ['application/vnd.docker.distribution.manifest.v1+prettyjws'],
    ['application/vnd.docker.distribution.manifest.v1+json'],
  ])('schema 1 (%s) -> 400 MANIFEST_INVALID mentioning schema 1', async (ct) => {
    const schema1 = {
      schemaVersion: 1,
      name: repo,
      tag: 'stable',
      architecture: 'amd64',
      fsLayers: [{ blobSum: previous.json.layers[0].digest }],
      history: [{ v1Compatibility: '{"id":"x"}' }],
      signatures: [],
    };
    const body = Buffer.from(JSON.stringify(schema1));
    const err = expectError(await putManifest(reg.url, repo, 'stable', body, ct), 400, 'MANIFEST_INVALID');
    expect(err.message).toMatch(/schema ?1/i);
    await unchanged('stable', sha256(body));
  });

  it('missing config/layer blobs -> 400 MANIFEST_BLOB_UNKNOWN listing the missing digests', async () => {
    const m = structuredClone(good);
    const missingConfig = descriptor(MT.ociConfig, randomBlob(20));
    const missingLayer = descriptor(MT.ociLayer, randomBlob(20));
    m.config = missingConfig;
    m.layers = [good.layers[0], missingLayer];
    const body = Buffer.from(JSON.stringify(m));
    const err = expectError(await putManifest(reg.url, repo, 'stable', body, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    const detail = JSON.stringify(err.detail);
    expect(detail).toContain(missingConfig.digest);
    expect(detail).toContain(missingLayer.digest);
    expect(detail).not.toContain(good.layers[0].digest);
    await unchanged('stable', sha256(body));
  });

  it('blobs present only in another repository count as missing -> MANIFEST_BLOB_UNKNOWN', async () => {
    const elsewhere = uniq('elsewhere');
    const foreignLayer = randomBlob(30);
    await pushBlob(reg.url, elsewhere, foreignLayer);
    const m = structuredClone(good);
    m.layers = [descriptor(MT.ociLayer, foreignLayer)];
    const body = Buffer.from(JSON.stringify(m));
    const err = expectError(await putManifest(reg.url, repo, 'stable', body, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect(JSON.stringify(err.detail)).toContain(sha256(foreignLayer));
    await unchanged('stable', sha256(body));
  });

  it('docker manifest with a missing layer -> MANIFEST_BLOB_UNKNOWN', async () => {
    const m = (await imageManifest(reg.url, repo, 'docker')) as any;
    const missing = descriptor(MT.dockerLayer, randomBlob(11));
    m.layers.push(missing);
    const body = Buffer.from(JSON.stringify(m));
    const err = expectError(await putManifest(reg.url, repo, 'stable', body, MT.dockerManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect(JSON.stringify(err.detail)).toContain(missing.digest);
    await unchanged('stable', sha256(body));
  });

  it('index with a missing child -> 400 MANIFEST_BLOB_UNKNOWN listing the child', async () => {
    const missing = sha256(randomBlob(50));
    const index = {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        { mediaType: MT.ociManifest, digest: previous.digest, size: previous.bytes.length },
        { mediaType: MT.ociManifest, digest: missing, size: 500 },
      ],
    };
    const body = Buffer.from(JSON.stringify(index));
    const err = expectError(await putManifest(reg.url, repo, 'stable', body, MT.ociIndex), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect(JSON.stringify(err.detail)).toContain(missing);
    expect(JSON.stringify(err.detail)).not.toContain(previous.digest);
    await unchanged('stable', sha256(body));
  });

  it('docker manifest list with a missing child -> 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const missing = sha256(randomBlob(50));
    const list = {
      schemaVersion: 2,
      mediaType: MT.dockerList,
      manifests: [{ mediaType: MT.dockerManifest, digest: missing, size: 500, platform: { architecture: 'amd64', os: 'linux' } }],
    };
    const body = Buffer.from(JSON.stringify(list));
    const err = expectError(await putManifest(reg.url, repo, 'newlist', body, MT.dockerList), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect(JSON.stringify(err.detail)).toContain(missing);
    await unchanged('newlist', sha256(body));
  });
});

describe('manifest size limit', () => {
  it('more than 4 MiB by default -> 413 SIZE_INVALID, nothing stored', async () => {
    const repo = uniq('big');
    const m = (await imageManifest(reg.url, repo)) as any;
    const base = Buffer.from(JSON.stringify({ ...m, annotations: { pad: '' } })).length;
    m.annotations = { pad: 'x'.repeat(4 * 1024 * 1024 + 1 - base) };
    const body = Buffer.from(JSON.stringify(m));
    expect(body.length).toBe(4 * 1024 * 1024 + 1);
    expectError(await putManifest(reg.url, repo, 'big', body, MT.ociManifest), 413, 'SIZE_INVALID');
    await expectNoManifest(reg, repo, 'big');
    await expectNoManifest(reg, repo, sha256(body));
  });

  describe('with manifests.maxBytes = 1024', () => {
    let small: TestRegistry;
    beforeAll(async () => {
      small = await startRegistry({ manifests: { maxBytes: 1024 } });
    });
    afterAll(async () => {
      await small.close();
    });

    async function sized(repo: string, size: number): Promise<Buffer> {
      const m = (await imageManifest(small.url, repo)) as any;
      const base = Buffer.from(JSON.stringify({ ...m, annotations: { pad: '' } })).length;
      m.annotations = { pad: 'x'.repeat(size - base) };
      const body = Buffer.from(JSON.stringify(m));
      expect(body.length).toBe(size);
      return body;
    }

    it('exactly maxBytes -> 201', async () => {
      const repo = uniq('lim');
      const body = await sized(repo, 1024);
      const res = await putManifest(small.url, repo, 'fits', body, MT.ociManifest);
      expect(res.status, res.text).toBe(201);
      const get = await call(small.url, 'GET', mpath(repo, 'fits'), { headers: ACCEPT });
      expect(get.body.equals(body)).toBe(true);
    });

    it('maxBytes + 1 -> 413 SIZE_INVALID, nothing stored, previous tag intact', async () => {
      const repo = uniq('lim');
      const prev = await pushImage(small.url, repo, 'tag');
      const body = await sized(repo, 1025);
      expectError(await putManifest(small.url, repo, 'tag', body, MT.ociManifest), 413, 'SIZE_INVALID');
      const get = await call(small.url, 'GET', mpath(repo, 'tag'), { headers: ACCEPT });
      expect(get.status).toBe(200);
      expect(get.headers.get('docker-content-digest')).toBe(prev.digest);
      await expectNoManifest(small, repo, sha256(body));
    });
  });
});

describe('GET/HEAD misses', () => {
  it('unknown tag / digest in a known repo -> 404 MANIFEST_UNKNOWN; unknown repo -> 404 NAME_UNKNOWN', async () => {
    const repo = uniq('miss');
    const img = await pushImage(reg.url, repo, 'here');
    expectError(await call(reg.url, 'GET', mpath(repo, 'nothere'), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', mpath(repo, 'nothere'), { headers: ACCEPT }), 404);
    expectError(await call(reg.url, 'GET', mpath(repo, sha256('nope')), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', mpath(repo, sha256('nope')), { headers: ACCEPT }), 404);
    const ghost = uniq('ghost');
    expectError(await call(reg.url, 'GET', mpath(ghost, 'here'), { headers: ACCEPT }), 404, 'NAME_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', mpath(ghost, 'here'), { headers: ACCEPT }), 404);
    // a manifest of another repository is not visible here
    const other = uniq('other');
    await pushImage(reg.url, other, 'x');
    expectError(await call(reg.url, 'GET', mpath(other, img.digest), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expectError(await call(reg.url, 'GET', mpath(other, 'here'), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
  });

  it('tags are case sensitive', async () => {
    const repo = uniq('case');
    await pushImage(reg.url, repo, 'Latest');
    expectError(await call(reg.url, 'GET', mpath(repo, 'latest'), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('tag overwrite', () => {
  it('moves the tag; the old manifest stays pullable by digest', async () => {
    const repo = uniq('ow');
    const m1 = await pushImage(reg.url, repo, 'latest');
    const m2 = await pushImage(reg.url, repo, 'latest', 'docker');
    await expectManifest(reg, repo, 'latest', m2);
    await expectManifest(reg, repo, m1.digest, m1);
    await expectManifest(reg, repo, m2.digest, m2);
    expect(await tagsOf(reg, repo)).toEqual(['latest']);
  });
});

describe('DELETE manifests', () => {
  it('by tag -> 202, removes only that tag', async () => {
    const repo = uniq('del');
    const m = await pushImage(reg.url, repo, 'a');
    await pushManifest(reg.url, repo, 'b', m.json, MT.ociManifest);
    const res = await call(reg.url, 'DELETE', mpath(repo, 'a'));
    expect(res.status).toBe(202);
    expectApiVersion(res);
    expectError(await call(reg.url, 'GET', mpath(repo, 'a'), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    await expectManifest(reg, repo, 'b', m);
    await expectManifest(reg, repo, m.digest, m);
    expect(await tagsOf(reg, repo)).toEqual(['b']);
    expectError(await call(reg.url, 'DELETE', mpath(repo, 'a')), 404, 'MANIFEST_UNKNOWN');
  });

  it('by digest -> 202, removes the manifest and every tag pointing at it, nothing else', async () => {
    const repo = uniq('del');
    const keep = await pushImage(reg.url, repo, 'keep');
    const m = await pushImage(reg.url, repo, 'x');
    await pushManifest(reg.url, repo, 'y', m.json, MT.ociManifest);
    const res = await call(reg.url, 'DELETE', mpath(repo, m.digest));
    expect(res.status).toBe(202);
    expectApiVersion(res);
    expectError(await call(reg.url, 'GET', mpath(repo, m.digest), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expectError(await call(reg.url, 'GET', mpath(repo, 'x'), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expectError(await call(reg.url, 'GET', mpath(repo, 'y'), { headers: ACCEPT }), 404, 'MANIFEST_UNKNOWN');
    expect(await tagsOf(reg, repo)).toEqual(['keep']);
    await expectManifest(reg, repo, 'keep', keep);
    expectError(await call(reg.url, 'DELETE', mpath(repo, m.digest)), 404, 'MANIFEST_UNKNOWN');
  });

  it('deleting in one repo leaves the same manifest in another repo', async () => {
    const a = uniq('dela');
    const b = uniq('delb');
    const m = (await imageManifest(reg.url, a)) as any;
    // link the same blobs into b
    for (const d of [m.config.digest, m.layers[0].digest]) {
      expect((await call(reg.url, 'POST', `/v2/${b}/blobs/uploads/?mount=${d}&from=${a}`)).status).toBe(201);
    }
    const pa = await pushManifest(reg.url, a, 't', m, MT.ociManifest);
    const pb = await pushManifest(reg.url, b, 't', m, MT.ociManifest);
    expect(pa.digest).toBe(pb.digest);
    expect((await call(reg.url, 'DELETE', mpath(a, pa.digest))).status).toBe(202);
    await expectManifest(reg, b, 't', pb);
    await expectManifest(reg, b, pb.digest, pb);
  });

  it('unknown -> 404 MANIFEST_UNKNOWN; unknown repository -> 404 NAME_UNKNOWN', async () => {
    const repo = uniq('del');
    await pushImage(reg.url, repo, 'a');
    expectError(await call(reg.url, 'DELETE', mpath(repo, 'zzz')), 404, 'MANIFEST_UNKNOWN');
    expectError(await call(reg.url, 'DELETE', mpath(repo, sha256('zzz'))), 404, 'MANIFEST_UNKNOWN');
    expectError(await call(reg.url, 'DELETE', mpath(uniq('ghost'), 'a')), 404, 'NAME_UNKNOWN');
  });

  it('a deleted manifest can be pushed again', async () => {
    const repo = uniq('del');
    const m = await pushImage(reg.url, repo, 'a');
    expect((await call(reg.url, 'DELETE', mpath(repo, m.digest))).status).toBe(202);
    await pushManifest(reg.url, repo, 'a', m.json, MT.ociManifest);
    await expectManifest(reg, repo, 'a', m);
  });
});

describe('DELETE manifests with storage.delete=false', () => {
  let ro: TestRegistry;
  beforeAll(async () => {
    ro = await startRegistry({ storage: { delete: false } });
  });
  afterAll(async () => {
    await ro.close();
  });

  it('by tag and by digest -> 405 UNSUPPORTED, manifest and tag intact', async () => {
    const repo = uniq('ro');
    const m = await pushImage(ro.url, repo, 'a');
    expectError(await call(ro.url, 'DELETE', mpath(repo, 'a')), 405, 'UNSUPPORTED');
    expectError(await call(ro.url, 'DELETE', mpath(repo, m.digest)), 405, 'UNSUPPORTED');
    await expectManifest(ro, repo, 'a', m);
    await expectManifest(ro, repo, m.digest, m);
  });
});
