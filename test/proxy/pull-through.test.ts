/**
 * Pull-through cache: two real Berths on loopback, an upstream in token mode and a mirror.
 * A counting proxy between them (upstream "hub") records the upstream requests and can
 * corrupt a blob; upstream "direct" reaches the upstream without it (anonymously).
 * skopeo pulls through the mirror by the registry-mirrors name, the /v2/<upstream>/ prefix,
 * and (as containerd sends it) `?ns=`.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineEnv, tryRun } from '../helpers/exec.js';
import { gzipSync } from 'node:zlib';
import { call, descriptor, expectError, MT, pushBlob, pushImage, pushManifest, sha256, type Pushed } from '../helpers/oci.js';
import { HOUR, TestClock } from '../helpers/clock.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { CountingProxy, MIRROR, PUSHER, startUpstream, type Upstream } from './helpers.js';

const BIG = 100 * 1024 * 1024;
const skopeo = (args: string[]) => tryRun('skopeo', args, { env: offlineEnv, timeoutMs: 120_000 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Seed {
  v1: Pushed;
  v2: Pushed;
  bad: Pushed;
  late: Pushed;
  pub: Pushed;
  pub2: Pushed;
  big: Pushed;
  /** A gzip layer its config's diff_id does not match (pushed while the upstream did not check). */
  mismatch: Pushed;
  blobs: Map<string, Buffer>;
}

/** Pushes the upstream's images while it runs without authentication. */
async function seed(dataDir: string): Promise<Seed> {
  const reg = await startRegistry({ storage: { fsync: false }, verify: { layers: 'off' } }, { dataDir, keepData: true, users: [PUSHER, MIRROR] });
  try {
    const blobs = new Map<string, Buffer>();
    const image = async (repo: string, tag: string, layerSize = 4096): Promise<Pushed> => {
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, repo, tag }));
      const layer = createHash('sha512').update(`${repo}:${tag}`).digest();
      const bytes = Buffer.alloc(layerSize);
      for (let i = 0; i < layerSize; i += layer.length) layer.copy(bytes, i);
      for (const b of [config, bytes]) blobs.set(await pushBlob(reg.url, repo, b), b);
      return pushManifest(
        reg.url,
        repo,
        tag,
        {
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: sha256(config), size: config.length },
          layers: [{ mediaType: MT.ociLayer, digest: sha256(bytes), size: bytes.length }],
        },
        MT.ociManifest,
      );
    };
    const v1 = await image('library/app', 'v1');
    const v2 = await image('library/app', 'v2');
    expect((await call(reg.url, 'PUT', '/v2/library/app/manifests/moving', { headers: { 'content-type': MT.ociManifest }, body: v1.bytes })).status).toBe(201);
    return {
      v1,
      v2,
      bad: await image('library/bad', 'v1'),
      late: await image('library/late', 'v1', 4 * 1024 * 1024),
      pub: await image('public/app', 'v1'),
      pub2: await image('public/app', 'v2'),
      big: await image('library/big', 'v1', BIG),
      mismatch: await (async () => {
        const layer = gzipSync(Buffer.from('the layer'));
        const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha256('other bytes')] } }));
        for (const b of [config, layer]) blobs.set(await pushBlob(reg.url, 'library/mismatch', b), b);
        return pushManifest(
          reg.url,
          'library/mismatch',
          'v1',
          { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer)] },
          MT.ociManifest,
        );
      })(),
      blobs,
    };
  } finally {
    await reg.close();
  }
}

const blobsOf = (image: Pushed): string[] => [image.json.config.digest, ...image.json.layers.map((l: { digest: string }) => l.digest)];

/**
 * GET with the body hashed as it streams (nothing buffered), over a fresh connection.
 * Without `hash` only the bytes are counted (digest '').
 */
function fetchDigest(url: string, hash = true): Promise<{ status: number; digest: string; size: number }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const hasher = hash ? createHash('sha256') : undefined;
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        hasher?.update(chunk);
        size += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: hasher ? `sha256:${hasher.digest('hex')}` : '', size }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('pull-through cache', () => {
  let work: string;
  let upstreamDir: string;
  let images: Seed;
  let upstream: Upstream | undefined;
  let front: CountingProxy;
  let mirror: TestRegistry;
  // The mirror's clock: cached tags go stale when the test moves it, not with the machine's pace.
  const clock = new TestClock();

  const blobGets = () => front.count('GET', /\/blobs\/sha256:/);
  const pull = async (ref: string, dir: string) => {
    const res = await skopeo(['copy', '--src-tls-verify=false', `docker://${mirror.host}/${ref}`, `dir:${join(work, dir)}`]);
    return res;
  };
  /** The pulled directory holds exactly the upstream's bytes. */
  const expectPulled = async (dir: string, image: Pushed) => {
    expect(await readFile(join(work, dir, 'manifest.json'))).toEqual(image.bytes);
    for (const digest of blobsOf(image)) {
      expect(await readFile(join(work, dir, digest.slice('sha256:'.length)))).toEqual(images.blobs.get(digest));
    }
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-proxy-'));
    upstreamDir = join(work, 'upstream');
    images = await seed(upstreamDir);
    upstream = await startUpstream(upstreamDir);
    const upstreamUrl = upstream.url; // the same after a restart
    front = new CountingProxy(() => upstreamUrl);
    await front.start();
    mirror = await startRegistry({
      storage: { fsync: false },
      proxy: {
        upstreams: [
          { name: 'hub', url: front.url, username: MIRROR.name, password: MIRROR.password, tagTtl: '1h', timeout: '60s' },
          { name: 'direct', url: upstream.url, tagTtl: '1h', timeout: '60s' },
        ],
        defaultUpstream: 'hub',
        local: ['team/**'],
      },
    }, { clock: clock.now });
  });

  afterAll(async () => {
    await mirror?.close();
    await front?.close();
    await upstream?.app.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls by the registry-mirrors name, the upstream prefix and ?ns= into one cache; the second pull fetches no blob', async () => {
    // The upstream wants a token: the mirror's credentials go through the Bearer flow.
    expectError(await call(upstream!.url, 'GET', '/v2/library/app/manifests/v1'), 401, 'UNAUTHORIZED');

    const first = await pull('library/app:v1', 'mirrors');
    expect(first.code, first.stderr).toBe(0);
    await expectPulled('mirrors', images.v1);
    expect(blobGets()).toBe(2);

    const second = await pull('hub/library/app:v1', 'prefix');
    expect(second.code, second.stderr).toBe(0);
    await expectPulled('prefix', images.v1);

    // containerd: the name without the host, the upstream's host in ?ns=.
    for (const ns of [front.host, 'hub']) {
      const manifest = await call(mirror.url, 'GET', `/v2/library/app/manifests/v1?ns=${ns}`, { headers: { accept: MT.ociManifest } });
      expect(manifest.status).toBe(200);
      expect(manifest.body).toEqual(images.v1.bytes);
      for (const digest of blobsOf(images.v1)) {
        const blob = await call(mirror.url, 'GET', `/v2/library/app/blobs/${digest}?ns=${ns}`);
        expect(blob.status).toBe(200);
        expect(blob.body).toEqual(images.blobs.get(digest));
      }
    }
    // A single name is a Docker Hub official image.
    const single = await call(mirror.url, 'HEAD', '/v2/app/manifests/v1', { headers: { accept: MT.ociManifest } });
    expect(single.headers.get('docker-content-digest')).toBe(images.v1.digest);

    expect(blobGets()).toBe(2);
    expect(front.count('GET', /\/manifests\//)).toBe(1);
    expect(front.statuses).toContain(401);
    expect((await call(mirror.url, 'GET', '/v2/_catalog')).json().repositories).toContain('hub/library/app');
  });

  it('refuses ?ns= naming a registry it does not mirror (404 NAME_UNKNOWN): never the default upstream or a local image of that name', async () => {
    const local = await pushImage(mirror.url, 'team/ns', 'v1');
    const before = front.requests.length;
    const manifest = expectError(
      await call(mirror.url, 'GET', '/v2/library/app/manifests/v1?ns=quay.io', { headers: { accept: MT.ociManifest } }),
      404,
      'NAME_UNKNOWN',
    );
    expect(manifest.message).toContain('"quay.io"');
    expect((await call(mirror.url, 'HEAD', '/v2/library/app/manifests/v1?ns=quay.io')).status).toBe(404);
    expectError(await call(mirror.url, 'GET', `/v2/library/app/blobs/${images.v1.json.config.digest}?ns=quay.io`), 404, 'NAME_UNKNOWN');
    expectError(await call(mirror.url, 'GET', '/v2/team/ns/tags/list?ns=ghcr.io'), 404, 'NAME_UNKNOWN');
    expectError(await call(mirror.url, 'GET', '/v2/team/ns/manifests/v1?ns=ghcr.io'), 404, 'NAME_UNKNOWN');
    expectError(await call(mirror.url, 'POST', '/v2/team/ns/blobs/uploads/?ns=ghcr.io'), 404, 'NAME_UNKNOWN');
    expect(front.requests.length).toBe(before); // nothing asked upstream
    // ?ns= naming the mirror itself is the same as none.
    expect((await call(mirror.url, 'GET', `/v2/team/ns/tags/list?ns=${mirror.host}`)).json().tags).toEqual(['v1']);
    const own = await call(mirror.url, 'GET', `/v2/team/ns/manifests/v1?ns=${mirror.host}`, { headers: { accept: MT.ociManifest } });
    expect(own.body).toEqual(local.bytes);
  });

  it('answers pushes into a mirrored namespace with 405, while local repositories take pushes on the same instance', async () => {
    const upload = expectError(await call(mirror.url, 'POST', '/v2/hub/library/app/blobs/uploads/'), 405, 'UNSUPPORTED');
    expect(upload.message).toContain('mirror of upstream "hub"');
    expectError(
      await call(mirror.url, 'PUT', '/v2/library/app/manifests/v9', { headers: { 'content-type': MT.ociManifest }, body: images.v1.bytes }),
      405,
      'UNSUPPORTED',
    );
    const refused = await skopeo(['copy', '--dest-tls-verify=false', `dir:${join(work, 'mirrors')}`, `docker://${mirror.host}/org/tool:1`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('mirror of upstream');

    const local = await pushImage(mirror.url, 'team/app', 'v1');
    const back = await call(mirror.url, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: MT.ociManifest } });
    expect(back.body).toEqual(local.bytes);
    const pushed = await skopeo(['copy', '--dest-tls-verify=false', `dir:${join(work, 'mirrors')}`, `docker://${mirror.host}/team/tool:1`]);
    expect(pushed.code, pushed.stderr).toBe(0);
  });

  it('serves a tag from the cache within its TTL, then checks it with HEAD only until it moves', async () => {
    const manifestRequests = (method: string) => front.count(method, /\/library\/app\/manifests\//);
    const digestOf = async () => {
      const res = await call(mirror.url, 'GET', '/v2/library/app/manifests/moving', { headers: { accept: MT.ociManifest } });
      expect(res.status, res.text).toBe(200);
      return res.headers.get('docker-content-digest');
    };
    const gets = manifestRequests('GET');
    // Earlier tests' pulls may have revalidated their tags already (a slow machine takes over a TTL between two).
    const heads = manifestRequests('HEAD');
    expect(await digestOf()).toBe(images.v1.digest);
    expect(manifestRequests('GET')).toBe(gets + 1);
    expect(await digestOf()).toBe(images.v1.digest);
    expect(manifestRequests('HEAD')).toBe(heads);

    clock.advance(HOUR + 1000); // past the tag's TTL
    expect(await digestOf()).toBe(images.v1.digest);
    expect(await digestOf()).toBe(images.v1.digest);
    expect(manifestRequests('HEAD')).toBe(heads + 1);
    expect(manifestRequests('GET')).toBe(gets + 1);

    const moved = await call(upstream!.url, 'PUT', '/v2/library/app/manifests/moving', {
      headers: { 'content-type': MT.ociManifest, authorization: basic(PUSHER.name, PUSHER.password) },
      body: images.v2.bytes,
    });
    expect(moved.status, moved.text).toBe(201);
    expect(await digestOf()).toBe(images.v1.digest);

    clock.advance(HOUR + 1000);
    expect(await digestOf()).toBe(images.v2.digest);
    expect(manifestRequests('HEAD')).toBe(heads + 2);
    expect(front.requests).toContain(`GET /v2/library/app/manifests/${images.v2.digest}`);
    expect(manifestRequests('GET')).toBe(gets + 2);
  });

  it('gives a client that joins a download in progress every byte, from one upstream fetch', async () => {
    const layer = images.late.json.layers[0].digest as string;
    let release!: () => void;
    front.hold.set(layer, new Promise<void>((resolve) => (release = resolve)));
    const url = `${mirror.url}/v2/library/late/blobs/${layer}`;
    const first = fetchDigest(url);
    while (front.count('GET', new RegExp(layer)) === 0) await sleep(20);
    await sleep(200); // the first MiB is in the mirror's temp file, and partly with the first client
    const late = fetchDigest(url);
    await sleep(200);
    release();
    const expected = { status: 200, digest: layer, size: 4 * 1024 * 1024 };
    expect(await first).toEqual(expected);
    expect(await late).toEqual(expected);
    expect(front.count('GET', new RegExp(layer))).toBe(1);
    front.hold.delete(layer);
  });

  it('aborts a download nobody waits for any more when the mirror shuts down, leaving nothing behind', async () => {
    const layer = images.late.json.layers[0].digest as string;
    let release!: () => void;
    front.hold.set(layer, new Promise<void>((resolve) => (release = resolve)));
    const otherDir = join(work, 'other');
    const other = await startRegistry(
      { storage: { fsync: false }, proxy: { upstreams: [{ name: 'hub', url: front.url, username: MIRROR.name, password: MIRROR.password }] } },
      { dataDir: otherDir },
    );
    try {
      const before = front.count('GET', new RegExp(layer));
      // A client starts the download, gets its first bytes and hangs up.
      const status = await new Promise<string>((resolve, reject) => {
        const req = get(`${other.url}/v2/hub/library/late/blobs/${layer}`, { agent: false }, (res) => {
          res.once('data', (chunk: Buffer) => {
            req.destroy();
            resolve(`${res.statusCode} ${res.statusCode === 200 ? '' : chunk.toString()}`.trim());
          });
        });
        req.on('error', reject);
      });
      expect(status).toBe('200');
      expect(front.count('GET', new RegExp(layer))).toBe(before + 1);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        other.close(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('close did not abort the download')), 10_000))),
      ]);
      clearTimeout(timer);
      expect(await readdir(join(otherDir, 'tmp'))).toEqual([]);
      expect(await readdir(join(otherDir, 'blobs'))).toEqual([]);
    } finally {
      release();
      front.hold.delete(layer);
      await other.close();
    }
  });

  it('fails the pull of a corrupted upstream blob and caches nothing of it', async () => {
    const layer = images.bad.json.layers[0].digest as string;
    const blobFile = join(mirror.dataDir, 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7));
    front.corrupt.add(layer);
    const failed = await pull('library/bad:v1', 'bad');
    expect(failed.code).not.toBe(0);
    expect(existsSync(blobFile)).toBe(false);
    expect(await readdir(join(mirror.dataDir, 'tmp'))).toEqual([]);
    expect(front.count('GET', new RegExp(layer))).toBe(1);

    front.corrupt.delete(layer);
    await rm(join(work, 'bad'), { recursive: true, force: true });
    const ok = await pull('library/bad:v1', 'bad');
    expect(ok.code, ok.stderr).toBe(0);
    await expectPulled('bad', images.bad);
    expect(existsSync(blobFile)).toBe(true);
  });

  it('fetches each blob once for 20 concurrent pulls of an uncached 100 MiB image', async () => {
    const [config, layer] = blobsOf(images.big) as [string, string];
    // Every client gets all the bytes; a few also hash them (hashing 2 GiB would only load the CI machine).
    const hashed = (i: number) => i % 5 === 0;
    const pullOnce = async (i: number) => {
      const manifest = await call(mirror.url, 'GET', '/v2/library/big/manifests/v1', { headers: { accept: MT.ociManifest } });
      expect(manifest.status).toBe(200);
      return Promise.all([config, layer].map((d) => fetchDigest(`${mirror.url}/v2/library/big/blobs/${d}`, hashed(i))));
    };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pullOnce(i)));
    results.forEach(([c, l], i) => {
      expect(c).toEqual({ status: 200, digest: hashed(i) ? config : '', size: images.blobs.get(config)!.length });
      expect(l).toEqual({ status: 200, digest: hashed(i) ? layer : '', size: BIG });
    });
    expect(front.count('GET', /\/library\/big\/manifests\//)).toBe(1);
    expect(front.count('GET', new RegExp(`/blobs/${config}`))).toBe(1);
    expect(front.count('GET', new RegExp(`/blobs/${layer}`))).toBe(1);
  });

  it('checks a cached image against its config: a mismatch is served as upstream has it, logged and counted', async () => {
    const res = await pull('library/mismatch:v1', 'mismatch');
    expect(res.code, res.stderr).toBe(0);
    await expectPulled('mismatch', images.mismatch);
    // Checked in the background once every blob is cached.
    let detail: { verification: string | null } = { verification: null };
    for (let i = 0; i < 100 && detail.verification === null; i++) {
      detail = (await call(mirror.url, 'GET', '/_berth/api/repositories/hub/library/mismatch/manifests/v1')).json();
      if (detail.verification === null) await sleep(50);
    }
    expect(detail.verification).toBe('mismatch');
    expect((await call(mirror.url, 'GET', '/metrics')).text).toMatch(/berth_image_verifications_total\{source="mirror",result="mismatch"\} 1/);
    const storage = (await call(mirror.url, 'GET', '/_berth/api/storage')).json();
    expect(storage.mirror).toMatchObject({ cacheBytes: expect.any(Number), hits: expect.any(Number), misses: expect.any(Number) });
    expect(storage.mirror.misses).toBeGreaterThan(0);
  });

  it('keeps the cache within maxBytes, evicting the least recently pulled images and never a blob a local image uses', async () => {
    const [v2Config, v2Layer] = blobsOf(images.v2) as [string, string];
    const file = (reg: TestRegistry, digest: string) => join(reg.dataDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
    const capped = await startRegistry({
      storage: { fsync: false },
      gc: { interval: 0, gracePeriod: 0 },
      proxy: {
        upstreams: [{ name: 'hub', url: upstream!.url, username: MIRROR.name, password: MIRROR.password, tagTtl: '1h' }],
        defaultUpstream: 'hub',
        local: ['team/**'],
        maxBytes: 10_000, // two of the ~4.3 kB images fit, three do not
      },
    });
    try {
      const copy = async (ref: string) => {
        const dir = join(work, `capped-${ref.replace(/[/:]/g, '-')}-${Date.now()}`);
        const res = await skopeo(['copy', '--src-tls-verify=false', `docker://${capped.host}/${ref}`, `dir:${dir}`]);
        expect(res.code, res.stderr).toBe(0);
      };
      // A local image sharing v2's layer.
      const config = Buffer.from('{"architecture":"amd64","os":"linux","local":true,"rootfs":{"type":"layers","diff_ids":[]}}');
      await pushBlob(capped.url, 'team/local', config);
      await pushBlob(capped.url, 'team/local', images.blobs.get(v2Layer)!);
      await pushManifest(
        capped.url,
        'team/local',
        'v1',
        {
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: sha256(config), size: config.length },
          layers: [{ mediaType: MT.ociLayer, digest: v2Layer, size: images.blobs.get(v2Layer)!.length }],
        },
        MT.ociManifest,
      );

      await copy('library/app:v1');
      await copy('library/app:v2');
      await sleep(1100);
      await copy('library/app:v1'); // v1 is now more recently pulled than v2
      await copy('library/bad:v1'); // over the cap: v2 goes

      const cachedTags = async (repo: string) => (await call(capped.url, 'GET', `/v2/${repo}/tags/list`)).json().tags as string[];
      expect(await cachedTags('hub/library/app')).toEqual(['v1']);
      expect(await cachedTags('hub/library/bad')).toEqual(['v1']);

      const gc = await call(capped.url, 'POST', '/_berth/admin/gc');
      expect(gc.status, gc.text).toBe(200);
      expect(existsSync(file(capped, v2Config))).toBe(false);
      expect(existsSync(file(capped, v2Layer))).toBe(true);
      for (const digest of [...blobsOf(images.v1), ...blobsOf(images.bad)]) expect(existsSync(file(capped, digest))).toBe(true);
      const local = await skopeo(['copy', '--src-tls-verify=false', `docker://${capped.host}/team/local:v1`, `dir:${join(work, 'capped-local')}`]);
      expect(local.code, local.stderr).toBe(0);

      // An evicted image is fetched again.
      await copy('library/app:v2');
      expect(await cachedTags('hub/library/app')).toContain('v2');
    } finally {
      await capped.close();
    }
  });

  it('serves cached content (stale tags too) while the upstream is down, names it for uncached content, and recovers', async () => {
    const cached = await pull('direct/public/app:v1', 'direct1');
    expect(cached.code, cached.stderr).toBe(0);

    await upstream!.app.close();
    const port = upstream!.port;
    upstream = undefined;
    clock.advance(HOUR + 1000); // hub's tags are stale now
    for (const [ref, image] of [['direct/public/app:v1', images.pub], ['library/app:v1', images.v1]] as const) {
      const again = await pull(ref, `down-${image.digest.slice(7, 15)}`);
      expect(again.code, again.stderr).toBe(0);
      await expectPulled(`down-${image.digest.slice(7, 15)}`, image);
    }
    const missing = expectError(
      await call(mirror.url, 'GET', '/v2/direct/public/app/manifests/v2', { headers: { accept: MT.ociManifest } }),
      503,
      'UNAVAILABLE',
    );
    expect(missing.message).toContain('upstream "direct"');
    const failed = await pull('direct/public/app:v2', 'direct2');
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('503');

    upstream = await startUpstream(upstreamDir, port);
    // The mirror may be backing off after the failures: it retries within seconds.
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      if (i > 0) await sleep(250);
      status = (await call(mirror.url, 'GET', '/v2/direct/public/app/manifests/v2', { headers: { accept: MT.ociManifest } })).status;
    }
    expect(status).toBe(200);
    const restored = await pull('direct/public/app:v2', 'direct2');
    expect(restored.code, restored.stderr).toBe(0);
    await expectPulled('direct2', images.pub2);
  });
});

describe('?ns= without upstreams', () => {
  it('a registry that mirrors nothing refuses every ?ns= but its own name, and takes its http.hostnames as its own', async () => {
    const reg = await startRegistry({ http: { hostnames: ['registry.lan:5000'] } });
    try {
      const pushed = await pushImage(reg.url, 't/core', 'x');
      expectError(await call(reg.url, 'GET', '/v2/t/core/manifests/x?ns=quay.io', { headers: { accept: MT.ociManifest } }), 404, 'NAME_UNKNOWN');
      expectError(await call(reg.url, 'GET', '/v2/t/core/tags/list?ns=docker.io'), 404, 'NAME_UNKNOWN');
      for (const ns of [reg.host, 'registry.lan:5000']) {
        const res = await call(reg.url, 'GET', `/v2/t/core/manifests/x?ns=${ns}`, { headers: { accept: MT.ociManifest } });
        expect(res.status).toBe(200);
        expect(res.body).toEqual(pushed.bytes);
      }
    } finally {
      await reg.close();
    }
  });
});
