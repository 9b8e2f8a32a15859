/**
 * End to end with containerd's `ctr` (1.6, the containerd that our private dockerd starts)
 * against a real Berth on loopback: pull what docker pushed, push to another repository
 * (cross-repository mount), push an imported image whose blobs Berth never saw (containerd's own
 * upload flow), pull by tag and by digest, and pull through a `--hosts-dir` mirror (containerd
 * adds `?ns=docker.io` to mirror requests).
 *
 * The tests in this file run in order and build on each other (one registry, one dockerd).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, staticBusybox, writeBuildContext, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

function pushDigest(output: string): string {
  const m = /: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(output);
  if (m === null) throw new Error(`no digest in docker push output:\n${output}`);
  return m[1]!;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('containerd ctr against Berth', () => {
  let reg: TestRegistry;
  let dockerd: Dockerd;
  let work: string;
  let host: string;
  /** Digest of team/base:1.0 as docker pushed it. */
  let baseDigest: string;
  /** Digest of the image ctr imported from `docker save` and pushed. */
  let importedDigest: string;
  /** Digest of library/busybox:1.36, which docker pushed for the mirror test. */
  let mirrorDigest: string;

  const ctr = (ns: string, ...args: string[]) => dockerd.ctrOk(ns, args);

  /** The digest containerd records for `ref` in namespace `ns` (from `ctr images ls`). */
  async function localDigest(ns: string, ref: string): Promise<string> {
    const { stdout } = await ctr(ns, 'images', 'ls');
    for (const line of stdout.split('\n')) {
      const [name, , digest] = line.trim().split(/\s+/);
      if (name === ref && digest !== undefined) return digest;
    }
    throw new Error(`${ref} not in namespace ${ns}:\n${stdout}`);
  }

  /** What Berth answers for a manifest: status, Docker-Content-Digest, digest of the body. */
  async function remoteManifest(repo: string, reference: string) {
    const res = await fetch(`${reg.url}/v2/${repo}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT } });
    const body = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      mediaType: res.headers.get('content-type'),
      digest: res.headers.get('docker-content-digest'),
      bodyDigest: sha256(body),
      json: res.status === 200 ? (JSON.parse(Buffer.from(body).toString('utf8')) as { layers?: { digest: string }[] }) : undefined,
    };
  }

  beforeAll(async () => {
    // It holds a copy of docker.io/library/busybox under that name, with no upstream (an
    // air-gapped mirror): docker.io is one of its names, so ?ns=docker.io is its own.
    reg = await startRegistry({ http: { hostnames: ['docker.io'] } });
    host = reg.host;
    dockerd = await startDockerd({ insecureRegistries: [host] });
    work = await mkdtemp(join(tmpdir(), 'berth-ctr-e2e-'));

    // docker builds and pushes the image ctr starts from.
    const base = await writeBuildContext(
      work,
      'base',
      ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY one.txt /data/one.txt', 'COPY two.txt /data/two.txt', ''].join('\n'),
      { busybox: { copyFrom: staticBusybox() }, 'one.txt': 'one\n', 'two.txt': 'two\n' },
    );
    await dockerd.dockerOk(['build', '-q', '-t', `${host}/team/base:1.0`, base]);
    baseDigest = pushDigest((await dockerd.dockerOk(['push', `${host}/team/base:1.0`])).stdout);

    // A second image that only ever exists locally: ctr will have to upload its blobs itself.
    const local = await writeBuildContext(
      work,
      'local',
      [`FROM ${host}/team/base:1.0`, 'COPY three.txt /data/three.txt', ''].join('\n'),
      { 'three.txt': `three ${Date.now()}\n` },
    );
    await dockerd.dockerOk(['build', '-q', '-t', 'berth-e2e/local:1.0', local]);
    await dockerd.dockerOk(['save', '-o', join(work, 'local.tar'), 'berth-e2e/local:1.0']);

    // What the mirror serves as docker.io/library/busybox: its top layer, config and manifest are
    // new to containerd's content store, so ctr has to GET them through the mirror.
    const mirrored = await writeBuildContext(
      work,
      'mirrored',
      [`FROM ${host}/team/base:1.0`, 'COPY mirror.txt /data/mirror.txt', ''].join('\n'),
      { 'mirror.txt': `mirror ${Date.now()}\n` },
    );
    await dockerd.dockerOk(['build', '-q', '-t', `${host}/library/busybox:1.36`, mirrored]);
    mirrorDigest = pushDigest((await dockerd.dockerOk(['push', `${host}/library/busybox:1.36`])).stdout);
  });

  afterAll(async () => {
    try {
      await dockerd?.stop();
    } finally {
      try {
        await reg?.close();
      } finally {
        if (work) await rm(work, { recursive: true, force: true });
      }
    }
  });

  it('pulls an image that docker pushed, by tag and by digest', async () => {
    await ctr('pull', 'images', 'pull', '--plain-http', `${host}/team/base:1.0`);
    expect(await localDigest('pull', `${host}/team/base:1.0`)).toBe(baseDigest);

    await ctr('pull-digest', 'images', 'pull', '--plain-http', `${host}/team/base@${baseDigest}`);
    expect(await localDigest('pull-digest', `${host}/team/base@${baseDigest}`)).toBe(baseDigest);

    // containerd fetched every blob and checked it against its digest; the content store agrees.
    const content = (await ctr('pull', 'content', 'ls', '-q')).stdout;
    const remote = await remoteManifest('team/base', '1.0');
    for (const layer of remote.json?.layers ?? []) expect(content).toContain(layer.digest);
  });

  it('pushes it to another repository and pulls it back by tag with the same digest', async () => {
    const copy = `${host}/ctr/copy:1.0`;
    await ctr('pull', 'images', 'tag', `${host}/team/base:1.0`, copy);
    // containerd knows the blobs came from team/base and asks Berth to mount them.
    await ctr('pull', 'images', 'push', '--plain-http', copy);

    const remote = await remoteManifest('ctr/copy', '1.0');
    expect(remote.status).toBe(200);
    expect(remote.digest).toBe(baseDigest);
    expect(remote.bodyDigest).toBe(baseDigest);

    await ctr('copy-back', 'images', 'pull', '--plain-http', copy);
    expect(await localDigest('copy-back', copy)).toBe(baseDigest);
  });

  it('pushes an imported image whose blobs Berth has never seen, and pulls it back', async () => {
    // `docker save` writes uncompressed layers; containerd builds a new, gzip-compressed manifest.
    await ctr('import', 'images', 'import', '--compress-blobs', '--no-unpack', join(work, 'local.tar'));
    const { stdout } = await ctr('import', 'images', 'ls', '-q');
    const importedRef = stdout.split('\n').find((l) => l.includes('berth-e2e/local:1.0'));
    expect(importedRef, stdout).toBeDefined();
    const target = `${host}/ctr/imported:1.0`;
    await ctr('import', 'images', 'tag', importedRef!, target);
    importedDigest = await localDigest('import', target);

    await ctr('import', 'images', 'push', '--plain-http', target);
    const remote = await remoteManifest('ctr/imported', '1.0');
    expect(remote.status).toBe(200);
    expect(remote.digest).toBe(importedDigest);
    expect(remote.bodyDigest).toBe(importedDigest);
    expect(remote.json?.layers).toHaveLength(4);
    for (const layer of remote.json?.layers ?? []) {
      const head = await fetch(`${reg.url}/v2/ctr/imported/blobs/${layer.digest}`, { method: 'HEAD' });
      expect(head.status, layer.digest).toBe(200);
    }

    await ctr('imported-back', 'images', 'pull', '--plain-http', target);
    expect(await localDigest('imported-back', target)).toBe(importedDigest);
    await ctr('imported-back', 'images', 'pull', '--plain-http', `${host}/ctr/imported@${importedDigest}`);
    expect(await localDigest('imported-back', `${host}/ctr/imported@${importedDigest}`)).toBe(importedDigest);
  });

  it('pulls docker.io/library/busybox through Berth configured as a mirror with --hosts-dir', async () => {
    // Requests to the mirror carry ?ns=docker.io; Docker Hub itself is unreachable (dead proxy).
    // Without docker.io in http.hostnames they would answer 404 (see test/proxy).
    const hostsDir = join(work, 'hosts');
    await mkdir(join(hostsDir, 'docker.io'), { recursive: true });
    await writeFile(
      join(hostsDir, 'docker.io', 'hosts.toml'),
      ['server = "https://registry-1.docker.io"', '', `[host."http://${host}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
    await ctr('mirror', 'images', 'pull', '--hosts-dir', hostsDir, 'docker.io/library/busybox:1.36');
    expect(await localDigest('mirror', 'docker.io/library/busybox:1.36')).toBe(mirrorDigest);
    const content = (await ctr('mirror', 'content', 'ls', '-q')).stdout;
    const remote = await remoteManifest('library/busybox', '1.36');
    for (const layer of remote.json?.layers ?? []) expect(content).toContain(layer.digest);
  });

  it('lists every repository in /v2/_catalog', async () => {
    const catalog = await fetch(`${reg.url}/v2/_catalog`);
    expect(catalog.status).toBe(200);
    expect(await catalog.json()).toEqual({ repositories: ['ctr/copy', 'ctr/imported', 'library/busybox', 'team/base'] });
  });
});
