/**
 * End-to-end: the real podman (4.3) against a real Berth on loopback, with podman's storage in a
 * temporary directory. A busybox image is imported from a tarball, pushed with gzip and with zstd
 * layers, removed locally, pulled back from Berth and run.
 *
 * Needs the Debian packages podman (with its runc/crun, conmon) and busybox-static.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineEnv, run, runExpectFailure, tryRun, type RunResult } from '../helpers/exec.js';
import { BUSYBOX, makeRootfsTar, sha256, type ImageManifest } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

describe('podman against Berth', () => {
  let reg: TestRegistry;
  let work: string;
  let podmanArgs: string[];
  /** Distinct content per image, so podman cannot reuse the gzip layer for the zstd push. */
  const markers = { gzip: `gzip-${randomBytes(8).toString('hex')}`, zstd: `zstd-${randomBytes(8).toString('hex')}` };

  /** podman's own configuration: runc, because crun refuses the hybrid cgroup layout of some hosts. */
  let env: NodeJS.ProcessEnv;
  const podman = (args: readonly string[]): Promise<RunResult> => run('podman', [...podmanArgs, ...args], { env, timeoutMs: 120_000 });
  const remote = (flavour: keyof typeof markers) => `${reg.host}/pod/busybox:${flavour}`;

  async function fetchManifest(tag: string): Promise<{ bytes: Buffer; manifest: ImageManifest; digest: string | null }> {
    const res = await fetch(`${reg.url}/v2/pod/busybox/manifests/${tag}`, { headers: { Accept: ACCEPT } });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    return { bytes, manifest: JSON.parse(bytes.toString('utf8')) as ImageManifest, digest: res.headers.get('docker-content-digest') };
  }

  async function fetchBlob(digest: string): Promise<Buffer> {
    const res = await fetch(`${reg.url}/v2/pod/busybox/blobs/${digest}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  beforeAll(async () => {
    reg = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-podman-'));
    await writeFile(join(work, 'containers.conf'), '[engine]\nruntime = "runc"\n');
    env = { ...offlineEnv, CONTAINERS_CONF: join(work, 'containers.conf') };
    podmanArgs = [
      '--root',
      join(work, 'root'),
      '--runroot',
      join(work, 'runroot'),
      '--tmpdir',
      join(work, 'tmp'),
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'none',
    ];
    for (const flavour of ['gzip', 'zstd'] as const) {
      const tar = await makeRootfsTar(work, flavour, {
        'bin/busybox': { from: BUSYBOX },
        'etc/berth-marker': { content: `${markers[flavour]}\n` },
      });
      await podman(['import', '--change', 'CMD ["/bin/busybox","sh"]', tar, `localhost/berth-bb:${flavour}`]);
    }
  });

  afterAll(async () => {
    if (work) {
      // Drop containers/images podman may still hold (and their mounts) before deleting its storage.
      await tryRun('podman', [...podmanArgs, 'rm', '--all', '--force'], { env });
      await tryRun('podman', [...podmanArgs, 'rmi', '--all', '--force'], { env });
      await rm(work, { recursive: true, force: true });
    }
    await reg?.close();
  });

  it('pushes a busybox image with gzip layers', async () => {
    await podman(['push', '--tls-verify=false', 'localhost/berth-bb:gzip', `docker://${remote('gzip')}`]);
    const { bytes, manifest, digest } = await fetchManifest('gzip');
    expect(digest).toBe(sha256(bytes));
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]!.mediaType).toMatch(/(tar\+gzip|tar\.gzip)$/);
    const layer = await fetchBlob(manifest.layers[0]!.digest);
    expect(layer.subarray(0, 2).equals(GZIP_MAGIC)).toBe(true);
    expect(sha256(layer)).toBe(manifest.layers[0]!.digest);
  });

  it('pushes a busybox image with zstd layers (--compression-format zstd)', async () => {
    await podman([
      'push',
      '--tls-verify=false',
      '--compression-format',
      'zstd',
      'localhost/berth-bb:zstd',
      `docker://${remote('zstd')}`,
    ]);
    const { bytes, manifest, digest } = await fetchManifest('zstd');
    expect(digest).toBe(sha256(bytes));
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const layer = await fetchBlob(manifest.layers[0]!.digest);
    expect(layer.subarray(0, 4).equals(ZSTD_MAGIC)).toBe(true);
    expect(sha256(layer)).toBe(manifest.layers[0]!.digest);

    const tags = await fetch(`${reg.url}/v2/pod/busybox/tags/list`);
    expect(await tags.json()).toEqual({ name: 'pod/busybox', tags: ['gzip', 'zstd'] });
  });

  it('after removing the local images, pulls both back from Berth and runs busybox', async () => {
    await podman(['rmi', '--force', 'localhost/berth-bb:gzip', 'localhost/berth-bb:zstd']);
    const left = await podman(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(left.stdout.trim()).toBe('');
    // Nothing local any more: running without pulling fails.
    await runExpectFailure('podman', [...podmanArgs, 'run', '--rm', '--pull=never', '--network', 'none', remote('gzip')], { env });

    for (const flavour of ['gzip', 'zstd'] as const) {
      const pulled = await podman(['pull', '--tls-verify=false', remote(flavour)]);
      expect(pulled.stderr + pulled.stdout).toMatch(/Writing manifest to image destination/);

      const runArgs = [
        'run',
        '--rm',
        '--pull=never',
        '--network',
        'none',
        '--ulimit',
        'nofile=1024:1024',
        '--ulimit',
        'nproc=1024:1024',
        remote(flavour),
      ];
      const hello = await podman([...runArgs, '/bin/busybox', 'echo', 'hello']);
      expect(hello.stdout).toBe('hello\n');
      const marker = await podman([...runArgs, '/bin/busybox', 'cat', '/etc/berth-marker']);
      expect(marker.stdout).toBe(`${markers[flavour]}\n`);
    }

    const images = await podman(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stdout.trim().split('\n').sort()).toEqual([remote('gzip'), remote('zstd')]);
  });
});
