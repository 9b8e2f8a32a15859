/**
 * Layers checked against their config's rootfs.diff_ids on manifest PUT (verify.layers):
 * good images of every layer type go in, hand-made bad ones are refused with the layer,
 * its digest, the expected and the computed diff_id, and leave nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compressor } from 'zstd-napi';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  MT,
  call,
  descriptor,
  expectError,
  gzipLayer,
  imageConfig,
  locationUrl,
  OCTET,
  pushBlob,
  pushImage,
  putManifest,
  randomBlob,
  sha256,
  uniq,
  withQuery,
} from '../helpers/oci.js';

const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';

/** A zstd frame of `data` with a content checksum (as zstd's CLI and podman write them). */
function zstd(data: Buffer): Buffer {
  const compressor = new Compressor();
  compressor.setParameters({ checksumFlag: true });
  return compressor.compress(data);
}

interface Layer {
  bytes: Buffer;
  mediaType: string;
  diffId: string;
}

const gz = (): Layer => ({ ...gzipLayer(4096), mediaType: MT.ociLayer });

/** Pushes the layers and a config listing `diffIds`; returns the manifest (not pushed). */
async function image(base: string, repo: string, layers: Layer[], diffIds: readonly string[], docker = false) {
  for (const l of layers) await pushBlob(base, repo, l.bytes);
  const config = imageConfig(diffIds);
  await pushBlob(base, repo, config);
  return manifest(config, layers, docker);
}

function manifest(config: Buffer, layers: Layer[], docker = false) {
  return {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerManifest : MT.ociManifest,
    config: descriptor(docker ? MT.dockerConfig : MT.ociConfig, config),
    layers: layers.map((l) => descriptor(l.mediaType, l.bytes)),
  };
}

async function metrics(base: string): Promise<string> {
  return (await call(base, 'GET', '/metrics')).text;
}

describe('diff_ids checked on push (verify.layers: enforce, the default)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.close();
  });

  /** PUTs `m` as `repo:tag` over an existing good image there, expects 400 and that nothing changed. */
  async function refused(repo: string, m: object, mediaType = MT.ociManifest) {
    const good = await pushImage(reg.url, repo, 'tag');
    const bytes = Buffer.from(JSON.stringify(m));
    const res = await putManifest(reg.url, repo, 'tag', bytes, mediaType);
    const error = expectError(res, 400, 'MANIFEST_INVALID');
    // Nothing stored: not by digest, and the tag did not move.
    expectError(await call(reg.url, 'GET', `/v2/${repo}/manifests/${sha256(bytes)}`), 404, 'MANIFEST_UNKNOWN');
    const tagged = await call(reg.url, 'GET', `/v2/${repo}/manifests/tag`, { headers: { accept: MT.ociManifest } });
    expect(tagged.headers.get('docker-content-digest')).toBe(good.digest);
    return error;
  }

  it('real gzip, zstd and uncompressed layers, OCI and Docker, in one image -> 201', async () => {
    const repo = uniq('good');
    const tar = randomBlob(5000);
    const layers: Layer[] = [
      gz(),
      { bytes: zstd(tar), mediaType: ZSTD_LAYER, diffId: sha256(tar) },
      { bytes: randomBlob(300), mediaType: MT.ociTarLayer, diffId: '' },
    ];
    layers[2]!.diffId = sha256(layers[2]!.bytes);
    const m = await image(reg.url, repo, layers, layers.map((l) => l.diffId));
    const res = await putManifest(reg.url, repo, 'oci', Buffer.from(JSON.stringify(m)), MT.ociManifest);
    expect(res.status, res.text).toBe(201);

    const docker = { ...gzipLayer(2000), mediaType: MT.dockerLayer };
    const d = await image(reg.url, repo, [docker], [docker.diffId], true);
    const put = await putManifest(reg.url, repo, 'docker', Buffer.from(JSON.stringify(d)), MT.dockerManifest);
    expect(put.status, put.text).toBe(201);
    expect(await metrics(reg.url)).toMatch(/berth_image_verifications_total\{source="push",result="verified"\} [1-9]/);
  });

  it('a wrong diff_id -> 400 naming the layer, its digest, the expected and the computed diff_id', async () => {
    const repo = uniq('wrong');
    const layers = [gz(), gz()];
    const bogus = sha256(randomBlob(10));
    const m = await image(reg.url, repo, layers, [layers[0]!.diffId, bogus]);
    const error = await refused(repo, m);
    expect(error.detail).toEqual([
      { layer: 1, digest: sha256(layers[1]!.bytes), mediaType: MT.ociLayer, expected: bogus, computed: layers[1]!.diffId },
    ]);
    expect(error.message).toContain('layer 1');
    expect(error.message).toContain(bogus);
    expect(error.message).toContain(layers[1]!.diffId);
    expect(await metrics(reg.url)).toMatch(/berth_image_verifications_total\{source="push",result="mismatch"\} [1-9]/);
  });

  it('layers in another order than the diff_ids -> 400 naming both', async () => {
    const repo = uniq('swap');
    const layers = [gz(), gz()];
    const m = await image(reg.url, repo, [layers[1]!, layers[0]!], [layers[0]!.diffId, layers[1]!.diffId]);
    const error = await refused(repo, m);
    expect(error.detail.map((d: { layer: number; computed: string }) => [d.layer, d.computed])).toEqual([
      [0, layers[1]!.diffId],
      [1, layers[0]!.diffId],
    ]);
  });

  it('a missing diff_id and an extra diff_id -> 400 naming the counts', async () => {
    const repo = uniq('count');
    const layers = [gz(), gz()];
    const missing = await refused(repo, await image(reg.url, repo, layers, [layers[0]!.diffId]));
    expect(missing.message).toBe('the image config lists 1 diff_ids for 2 layer(s)');
    const extra = await refused(repo, await image(reg.url, repo, [layers[0]!], [layers[0]!.diffId, layers[1]!.diffId]));
    expect(extra.message).toBe('the image config lists 2 diff_ids for 1 layer(s)');
  });

  it('gzip that decompresses to other bytes -> 400 with the digest it does decompress to', async () => {
    const repo = uniq('other');
    const inside = randomBlob(2000);
    const layer: Layer = { bytes: gzipSync(inside), mediaType: MT.ociLayer, diffId: sha256(randomBlob(2000)) };
    const error = await refused(repo, await image(reg.url, repo, [layer], [layer.diffId]));
    expect(error.detail[0]).toMatchObject({ layer: 0, expected: layer.diffId, computed: sha256(inside) });
  });

  it('truncated gzip, random bytes typed gzip, a zstd frame with a bad checksum -> 400, not a valid layer', async () => {
    const repo = uniq('invalid');
    const tar = randomBlob(20_000);
    const whole = gzipSync(tar);
    const truncated: Layer = { bytes: whole.subarray(0, whole.length - 100), mediaType: MT.ociLayer, diffId: sha256(tar) };
    const random: Layer = { bytes: randomBlob(3000), mediaType: MT.ociLayer, diffId: '' };
    random.diffId = sha256(random.bytes);
    const frame = zstd(tar);
    frame[frame.length - 1]! ^= 0xff; // the content checksum is the frame's last 4 bytes
    const badChecksum: Layer = { bytes: frame, mediaType: ZSTD_LAYER, diffId: sha256(tar) };
    for (const [layer, reason] of [
      [truncated, /not a valid gzip stream/],
      [random, /media type says gzip but its bytes are not compressed/],
      [badChecksum, /not a valid zstd stream: .*checksum/i],
    ] as const) {
      const error = await refused(repo, await image(reg.url, repo, [layer], [layer.diffId]));
      expect(error.detail).toHaveLength(1);
      expect(error.detail[0]).toMatchObject({ layer: 0, digest: sha256(layer.bytes), expected: layer.diffId, computed: null });
      expect(error.detail[0].reason).toMatch(reason);
    }
  });

  it('a config that is not JSON, or has no rootfs -> 400 MANIFEST_INVALID', async () => {
    const repo = uniq('config');
    const layer = gz();
    await pushBlob(reg.url, repo, layer.bytes);
    for (const [config, message] of [
      [Buffer.from('not json {'), /not valid JSON/],
      [Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' })), /has no rootfs/],
      [Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: ['nope'] } })), /not a list of digests/],
    ] as const) {
      await pushBlob(reg.url, repo, config);
      const error = await refused(repo, manifest(config, [layer]));
      expect(error.message).toMatch(message);
    }
  });

  it('an empty diff_ids list is accepted as unverifiable (the conformance suite pushes one) and counted', async () => {
    const repo = uniq('empty');
    const m = await image(reg.url, repo, [gz()], []);
    const res = await putManifest(reg.url, repo, 'empty', Buffer.from(JSON.stringify(m)), MT.ociManifest);
    expect(res.status, res.text).toBe(201);
    expect(await metrics(reg.url)).toMatch(/berth_image_verifications_total\{source="push",result="unverifiable"\} [1-9]/);
  });

  it('artifacts are not checked: another config media type, or an artifactType', async () => {
    const repo = uniq('artifact');
    const blob = randomBlob(100);
    await pushBlob(reg.url, repo, blob);
    const config = Buffer.from('{"not":"an image"}');
    await pushBlob(reg.url, repo, config);
    const helm = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor('application/vnd.cncf.helm.config.v1+json', config),
      layers: [descriptor(MT.ociLayer, blob)],
    };
    expect((await putManifest(reg.url, repo, 'helm', Buffer.from(JSON.stringify(helm)), MT.ociManifest)).status).toBe(201);
    const typed = { ...helm, artifactType: 'application/vnd.example', config: descriptor(MT.ociConfig, config) };
    expect((await putManifest(reg.url, repo, 'typed', Buffer.from(JSON.stringify(typed)), MT.ociManifest)).status).toBe(201);
  });

  it('a layer uploaded in PATCH chunks, and one mounted from another repository, are checked too', async () => {
    const repo = uniq('chunks');
    const layer = { ...gzipLayer(300_000), mediaType: MT.ociLayer };
    const post = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/`);
    let url = locationUrl(post, reg.url);
    for (let at = 0; at < layer.bytes.length; at += 50_000) {
      const chunk = layer.bytes.subarray(at, at + 50_000);
      const patch = await call(reg.url, 'PATCH', url, {
        headers: { ...OCTET, 'content-range': `${at}-${at + chunk.length - 1}` },
        body: chunk,
      });
      expect(patch.status).toBe(202);
      url = locationUrl(patch, reg.url);
    }
    const digest = sha256(layer.bytes);
    expect((await call(reg.url, 'PUT', withQuery(url, { digest }))).status).toBe(201);
    const config = imageConfig([layer.diffId]);
    await pushBlob(reg.url, repo, config);
    const m = manifest(config, [layer]);
    expect((await putManifest(reg.url, repo, 'ok', Buffer.from(JSON.stringify(m)), MT.ociManifest)).status).toBe(201);

    const other = uniq('mounted');
    expect((await call(reg.url, 'POST', `/v2/${other}/blobs/uploads/?mount=${digest}&from=${repo}`)).status).toBe(201);
    const bad = imageConfig([sha256('something else')]);
    await pushBlob(reg.url, other, bad);
    const res = await putManifest(reg.url, other, 'bad', Buffer.from(JSON.stringify(manifest(bad, [layer]))), MT.ociManifest);
    expect(expectError(res, 400, 'MANIFEST_INVALID').detail[0]).toMatchObject({ computed: layer.diffId });
  });
});

describe('verify.layers settings', () => {
  const regs: TestRegistry[] = [];
  afterAll(async () => {
    for (const r of regs) await r.close();
  });
  const start = async (layers: string) => {
    const r = await startRegistry({ verify: { layers } });
    regs.push(r);
    return r;
  };

  it('strict refuses an empty diff_ids list; enforce accepts it', async () => {
    const strict = await start('strict');
    const repo = uniq('strict');
    const m = await image(strict.url, repo, [gz()], []);
    const res = await putManifest(strict.url, repo, 'x', Buffer.from(JSON.stringify(m)), MT.ociManifest);
    expect(expectError(res, 400, 'MANIFEST_INVALID').message).toMatch(/lists no diff_ids/);
    const layer = gz();
    const good = await image(strict.url, repo, [layer], [layer.diffId]);
    expect((await putManifest(strict.url, repo, 'y', Buffer.from(JSON.stringify(good)), MT.ociManifest)).status).toBe(201);
  });

  it('warn accepts a mismatch and counts it', async () => {
    const warn = await start('warn');
    const repo = uniq('warn');
    const m = await image(warn.url, repo, [gz()], [sha256('not it')]);
    const res = await putManifest(warn.url, repo, 'x', Buffer.from(JSON.stringify(m)), MT.ociManifest);
    expect(res.status, res.text).toBe(201);
    expect(await metrics(warn.url)).toMatch(/berth_image_verifications_total\{source="push",result="mismatch"\} 1/);
  });

  it('off accepts anything and decompresses nothing', async () => {
    const off = await start('off');
    const repo = uniq('off');
    const m = await image(off.url, repo, [gz()], [sha256('not it')]);
    expect((await putManifest(off.url, repo, 'x', Buffer.from(JSON.stringify(m)), MT.ociManifest)).status).toBe(201);
    const text = await metrics(off.url);
    expect(text).not.toMatch(/berth_layer_digests_total\{/);
    expect(text).not.toMatch(/berth_image_verifications_total\{/);
  });
});

describe('blobs without a digest computed at upload are computed when first needed', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-verify-lazy-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('uploaded while verification was off, or resumed after a restart: checked at manifest PUT and remembered', async () => {
    const repo = uniq('lazy');
    const early = gz();
    const resumed = { ...gzipLayer(100_000), mediaType: MT.ociLayer };
    let sessionUrl: string;
    const off = await startRegistry({ verify: { layers: 'off' } }, { dataDir, keepData: true });
    try {
      await pushBlob(off.url, repo, early.bytes);
      const post = await call(off.url, 'POST', `/v2/${repo}/blobs/uploads/`);
      const patch = await call(off.url, 'PATCH', locationUrl(post, off.url), {
        headers: { ...OCTET, 'content-range': `0-49999` },
        body: resumed.bytes.subarray(0, 50_000),
      });
      expect(patch.status).toBe(202);
      sessionUrl = new URL(locationUrl(patch, off.url)).pathname;
    } finally {
      await off.close();
    }
    const on = await startRegistry({}, { dataDir, keepData: true });
    try {
      const put = await call(on.url, 'PUT', withQuery(`${on.url}${sessionUrl}`, { digest: sha256(resumed.bytes) }), {
        headers: { ...OCTET, 'content-range': `50000-${resumed.bytes.length - 1}` },
        body: resumed.bytes.subarray(50_000),
      });
      expect(put.status, put.text).toBe(201);
      const bad = imageConfig([early.diffId, sha256(randomBytes(8))]);
      await pushBlob(on.url, repo, bad);
      const res = await putManifest(on.url, repo, 'x', Buffer.from(JSON.stringify(manifest(bad, [early, resumed]))), MT.ociManifest);
      expect(expectError(res, 400, 'MANIFEST_INVALID').detail).toEqual([
        expect.objectContaining({ layer: 1, computed: resumed.diffId }),
      ]);
      expect(await metrics(on.url)).toMatch(/berth_layer_digests_total\{when="lazy",format="gzip"\} 2/);
      const good = imageConfig([early.diffId, resumed.diffId]);
      await pushBlob(on.url, repo, good);
      const ok = await putManifest(on.url, repo, 'x', Buffer.from(JSON.stringify(manifest(good, [early, resumed]))), MT.ociManifest);
      expect(ok.status, ok.text).toBe(201);
      // Remembered: nothing was computed again.
      expect(await metrics(on.url)).toMatch(/berth_layer_digests_total\{when="lazy",format="gzip"\} 2/);
    } finally {
      await on.close();
    }
  });
});
