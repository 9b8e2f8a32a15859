/**
 * End-to-end: the real skopeo (1.9) against a real Berth on loopback.
 * Images are real OCI layouts built with umoci from a static busybox (see test/helpers/images.ts).
 *
 * Needs the Debian packages skopeo, umoci and busybox-static.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineEnv, run, runExpectFailure, type RunResult } from '../helpers/exec.js';
import {
  buildBusyboxImage,
  layoutClosure,
  listFiles,
  readBlob,
  readLayoutTag,
  sha256,
  writeIndex,
  type BuiltImage,
  type ImageManifest,
  type LayoutImage,
} from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

interface SkopeoInspect {
  Name: string;
  Digest: string;
  RepoTags: string[];
  Architecture: string;
  Os: string;
  Layers: string[];
}

function skopeo(args: readonly string[]): Promise<RunResult> {
  return run('skopeo', args, { env: offlineEnv, timeoutMs: 120_000 });
}

/** Asserts that two digest -> bytes maps hold the same blobs with identical bytes. */
function expectSameBlobs(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [digest, bytes] of expected) {
    const got = actual.get(digest);
    expect(got, digest).toBeDefined();
    expect(got!.equals(bytes), `bytes of ${digest}`).toBe(true);
  }
}

describe('skopeo against Berth', () => {
  let reg: TestRegistry;
  let work: string;
  let layout: string;
  let app: BuiltImage;
  let amd64: BuiltImage;
  let arm64: BuiltImage;
  let multi: LayoutImage;
  let zimg: BuiltImage;

  const docker = (repo: string, ref: string) =>
    ref.includes(':') ? `docker://${reg.host}/${repo}@${ref}` : `docker://${reg.host}/${repo}:${ref}`;

  async function inspectRaw(repo: string, ref: string): Promise<Buffer> {
    return (await skopeo(['inspect', '--raw', '--tls-verify=false', docker(repo, ref)])).stdoutBuf;
  }

  async function inspect(repo: string, ref: string, extra: string[] = []): Promise<SkopeoInspect> {
    const res = await skopeo([...extra, 'inspect', '--tls-verify=false', docker(repo, ref)]);
    return JSON.parse(res.stdout) as SkopeoInspect;
  }

  async function listTags(repo: string): Promise<string[]> {
    const res = await skopeo(['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`]);
    const body = JSON.parse(res.stdout) as { Repository: string; Tags: string[] };
    expect(body.Repository).toBe(`${reg.host}/${repo}`);
    return body.Tags;
  }

  /** Regular files under the registry's blob store (Berth: <dataDir>/blobs/<alg>/<2 hex>/<hex>). */
  const blobFiles = () => listFiles(join(reg.dataDir, 'blobs'));

  beforeAll(async () => {
    reg = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-skopeo-'));
    layout = join(work, 'src');
    app = await buildBusyboxImage(layout, 'app', { workDir: work });
    amd64 = await buildBusyboxImage(layout, 'amd64', { workDir: work, architecture: 'amd64' });
    arm64 = await buildBusyboxImage(layout, 'arm64', { workDir: work, architecture: 'arm64' });
    zimg = await buildBusyboxImage(layout, 'zstd', { workDir: work });
    multi = await writeIndex(layout, 'multi', [amd64, arm64]);
  });

  afterAll(async () => {
    await reg?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes a 3-layer OCI image; inspect, inspect --raw and list-tags read it back', async () => {
    const first = await skopeo([
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${layout}:app`,
      docker('berth/app', 'v1'),
    ]);
    expect(first.stdout).toContain(`Copying blob ${app.layerDigests[0]}`);
    expect(first.stdout).toContain('Writing manifest to image destination');

    // The same image under a second tag: every layer is already there (HEAD answers 200).
    const second = await skopeo([
      '--debug',
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${layout}:app`,
      docker('berth/app', 'latest'),
    ]);
    for (const d of app.layerDigests) expect(second.stderr).toContain(`Skipping blob ${d} (already present)`);

    // --raw: exactly the bytes that were pushed, by tag and by digest.
    const raw = await inspectRaw('berth/app', 'v1');
    expect(raw.toString('utf8')).toBe(app.bytes.toString('utf8'));
    expect(sha256(raw)).toBe(app.digest);
    expect((await inspectRaw('berth/app', app.digest)).equals(app.bytes)).toBe(true);
    expect((await inspectRaw('berth/app', 'latest')).equals(app.bytes)).toBe(true);

    // The config blob, byte for byte.
    const cfg = await skopeo(['inspect', '--config', '--raw', '--tls-verify=false', docker('berth/app', 'v1')]);
    expect(cfg.stdoutBuf.equals(await readBlob(layout, app.configDigest))).toBe(true);

    const info = await inspect('berth/app', 'v1');
    expect(info.Name).toBe(`${reg.host}/berth/app`);
    expect(info.Digest).toBe(app.digest);
    expect(info.Layers).toEqual(app.layerDigests);
    expect(info.Architecture).toBe('amd64');
    expect(info.Os).toBe('linux');
    expect([...info.RepoTags].sort()).toEqual(['latest', 'v1']);

    expect(await listTags('berth/app')).toEqual(['latest', 'v1']);
  });

  it('copies the image back out to an OCI layout byte-identical', async () => {
    const out = join(work, 'out-app');
    await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', docker('berth/app', 'v1'), `oci:${out}:v1`]);
    const back = await readLayoutTag(out, 'v1');
    expect(back.digest).toBe(app.digest);
    expect(back.bytes.equals(app.bytes)).toBe(true);
    const blobs = await layoutClosure(out, back.digest);
    expect(blobs.size).toBe(5); // manifest + config + 3 layers
    expectSameBlobs(blobs, await layoutClosure(layout, app.digest));
  });

  it('copies to a multi-level repository (team/sub/app) by mounting the blobs, storing each blob once', async () => {
    const before = await blobFiles();
    const res = await skopeo([
      '--debug',
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      docker('berth/app', 'v1'),
      docker('team/sub/app', 'v1'),
    ]);
    const log = res.stderr;
    // skopeo knows the layers live in berth/app (its blob info cache) and asks Berth to mount them.
    for (const d of app.layerDigests) {
      expect(log).toMatch(
        new RegExp(`POST http://${reg.host}/v2/team/sub/app/blobs/uploads/\\?from=berth%2Fapp&mount=sha256%3A${d.slice(7)}`),
      );
    }
    expect(log.match(/\.\.\. mount OK/g) ?? []).toHaveLength(app.layerDigests.length);
    expect(log).not.toMatch(/mount failed|Error mounting/i);

    // No blob was stored a second time: the blob store holds exactly the files it held before,
    // and each blob of the image (config and layers; manifests may live elsewhere) is one file.
    const after = await blobFiles();
    expect(after).toEqual(before);
    for (const d of [app.configDigest, ...app.layerDigests]) {
      expect(
        after.filter((f) => f.includes(d.slice(7))),
        `files for ${d}`,
      ).toHaveLength(1);
    }

    expect((await inspectRaw('team/sub/app', 'v1')).equals(app.bytes)).toBe(true);
    expect(await listTags('team/sub/app')).toEqual(['v1']);
    const info = await inspect('team/sub/app', 'v1');
    expect(info.Name).toBe(`${reg.host}/team/sub/app`);
    expect(info.Layers).toEqual(app.layerDigests);

    // The mounted blobs are served from the new repository.
    const out = join(work, 'out-team');
    await skopeo([
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      docker('team/sub/app', 'v1'),
      `oci:${out}:v1`,
    ]);
    expectSameBlobs(await layoutClosure(out, app.digest), await layoutClosure(layout, app.digest));
  });

  it('copies a multi-arch OCI index with --all and back, byte-identical', async () => {
    await skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${layout}:multi`,
      docker('berth/multi', 'v1'),
    ]);

    const raw = await inspectRaw('berth/multi', 'v1');
    expect(raw.toString('utf8')).toBe(multi.bytes.toString('utf8'));
    expect((await inspectRaw('berth/multi', amd64.digest)).equals(amd64.bytes)).toBe(true);
    expect((await inspectRaw('berth/multi', arm64.digest)).equals(arm64.bytes)).toBe(true);

    // skopeo resolves the index to the platform's image.
    const a = await inspect('berth/multi', 'v1', ['--override-arch', 'amd64', '--override-os', 'linux']);
    expect(a.Architecture).toBe('amd64');
    expect(a.Layers).toEqual(amd64.layerDigests);
    const b = await inspect('berth/multi', 'v1', ['--override-arch', 'arm64', '--override-os', 'linux']);
    expect(b.Architecture).toBe('arm64');
    expect(b.Layers).toEqual(arm64.layerDigests);

    expect(await listTags('berth/multi')).toEqual(['v1']);

    const out = join(work, 'out-multi');
    await skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      docker('berth/multi', 'v1'),
      `oci:${out}:v1`,
    ]);
    const back = await readLayoutTag(out, 'v1');
    expect(back.digest).toBe(multi.digest);
    const blobs = await layoutClosure(out, back.digest);
    expect(blobs.size).toBe(11); // index + 2 x (manifest + config + 3 layers)
    expectSameBlobs(blobs, await layoutClosure(layout, multi.digest));
  });

  it('pushes zstd-compressed layers (--dest-compress-format zstd from an uncompressed dir: copy) and pulls them back', async () => {
    // zstd only applies to layers skopeo compresses itself, so start from uncompressed layers.
    const plain = join(work, 'zstd-plain');
    await skopeo(['copy', '--dest-decompress', `oci:${layout}:zstd`, `dir:${plain}`]);
    const plainManifest = JSON.parse(await readFile(join(plain, 'manifest.json'), 'utf8')) as ImageManifest;
    expect(plainManifest.layers.map((l) => l.mediaType)).toEqual(
      Array(3).fill('application/vnd.oci.image.layer.v1.tar'),
    );

    await skopeo([
      'copy',
      '--dest-tls-verify=false',
      '--dest-compress-format',
      'zstd',
      `dir:${plain}`,
      docker('berth/zstd', 'v1'),
    ]);

    const raw = await inspectRaw('berth/zstd', 'v1');
    const pushed = JSON.parse(raw.toString('utf8')) as ImageManifest;
    expect(pushed.layers.map((l) => l.mediaType)).toEqual(
      Array(3).fill('application/vnd.oci.image.layer.v1.tar+zstd'),
    );
    expect(pushed.config.digest).toBe(zimg.configDigest);

    // Pulled as stored: the same manifest, zstd frames in every layer.
    const out = join(work, 'out-zstd');
    await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', docker('berth/zstd', 'v1'), `oci:${out}:v1`]);
    const back = await readLayoutTag(out, 'v1');
    expect(back.digest).toBe(sha256(raw));
    const blobs = await layoutClosure(out, back.digest);
    for (const layer of pushed.layers) {
      const bytes = blobs.get(layer.digest);
      expect(bytes?.subarray(0, 4).equals(ZSTD_MAGIC), `zstd magic in ${layer.digest}`).toBe(true);
      expect(bytes?.length).toBe(layer.size);
    }

    // Decompressed again, the layers are the original tars.
    const plainBack = join(work, 'zstd-plain-back');
    await skopeo(['copy', '--dest-decompress', '--src-tls-verify=false', docker('berth/zstd', 'v1'), `dir:${plainBack}`]);
    const backManifest = JSON.parse(await readFile(join(plainBack, 'manifest.json'), 'utf8')) as ImageManifest;
    expect(backManifest.layers.map((l) => l.digest)).toEqual(plainManifest.layers.map((l) => l.digest));
    for (const l of backManifest.layers) {
      const hex = l.digest.slice(7);
      expect((await readFile(join(plainBack, hex))).equals(await readFile(join(plain, hex)))).toBe(true);
    }
  });

  it('an uncompressed OCI image (umoci\'s layers decompressed) pushes, is verified, and pulls back', async () => {
    const plain = join(work, 'uncompressed');
    await skopeo(['copy', '--dest-decompress', `oci:${layout}:zstd`, `dir:${plain}`]);
    const manifestBytes = await readFile(join(plain, 'manifest.json'));
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(Array(3).fill('application/vnd.oci.image.layer.v1.tar'));
    // skopeo compresses whatever it sends to a registry, so the layout goes up over the API as it is.
    for (const d of [manifest.config, ...manifest.layers]) {
      const bytes = await readFile(join(plain, d.digest.slice(7)));
      const res = await fetch(`${reg.url}/v2/berth/uncompressed/blobs/uploads/?digest=${d.digest}`, { method: 'POST', body: bytes });
      expect(res.status).toBe(201);
    }
    const put = await fetch(`${reg.url}/v2/berth/uncompressed/manifests/v1`, {
      method: 'PUT',
      headers: { 'content-type': manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json' },
      body: manifestBytes,
    });
    expect(put.status, await put.text()).toBe(201);
    const detail = (await (await fetch(`${reg.url}/_berth/api/repositories/berth/uncompressed/manifests/v1`)).json()) as {
      verification: string;
      layers: { digest: string; diffId: string; uncompressedSize: number; size: number }[];
    };
    expect(detail.verification).toBe('verified');
    for (const l of detail.layers) {
      expect(l.diffId).toBe(l.digest);
      expect(l.uncompressedSize).toBe(l.size);
    }

    const out = join(work, 'out-uncompressed');
    await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', docker('berth/uncompressed', 'v1'), `oci:${out}:v1`]);
    const back = await readLayoutTag(out, 'v1');
    expect(back.digest).toBe(sha256(manifestBytes));
    const blobs = await layoutClosure(out, back.digest);
    for (const l of manifest.layers) expect(blobs.get(l.digest)?.equals(await readFile(join(plain, l.digest.slice(7))))).toBe(true);
    // umoci applies the pulled layers (checking each against its diff_id).
    await run('umoci', ['unpack', '--rootless', '--image', `${out}:v1`, join(work, 'unpacked')], { env: offlineEnv });
    expect((await readFile(join(work, 'unpacked', 'rootfs', 'bin', 'busybox'))).length).toBeGreaterThan(100_000);
  });

  it('skopeo delete removes the manifest (and its tags); inspect then fails; other repositories are untouched', async () => {
    await skopeo(['delete', '--tls-verify=false', docker('berth/app', 'v1')]);

    for (const ref of ['v1', 'latest', app.digest]) {
      const res = await runExpectFailure('skopeo', ['inspect', '--raw', '--tls-verify=false', docker('berth/app', ref)], {
        env: offlineEnv,
      });
      expect(res.stderr, `inspect berth/app ${ref}`).toMatch(/manifest unknown/i);
    }

    // The copy mounted into team/sub/app shares the blobs but not the deletion.
    expect((await inspectRaw('team/sub/app', 'v1')).equals(app.bytes)).toBe(true);
    const out = join(work, 'out-after-delete');
    await skopeo([
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      docker('team/sub/app', 'v1'),
      `oci:${out}:v1`,
    ]);
    expectSameBlobs(await layoutClosure(out, app.digest), await layoutClosure(layout, app.digest));
  });
});
