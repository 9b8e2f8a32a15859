/**
 * End-to-end: an image built with buildah (1.28) from scratch is pushed to Berth (gzip
 * layers, checked against the config's diff_ids on the way in); podman (sharing buildah's
 * storage) pulls it back, checking the diff_ids itself, and runs it. The browse API and
 * search then show what is inside.
 *
 * Needs the Debian packages buildah, podman (with runc) and busybox-static.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineEnv, run, tryRun, type RunResult } from '../helpers/exec.js';
import { BUSYBOX, type ImageManifest } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('buildah against Berth', () => {
  let reg: TestRegistry;
  let work: string;
  let storage: string[];
  let env: NodeJS.ProcessEnv;
  const marker = `buildah-${randomBytes(8).toString('hex')}`;
  const buildah = (args: readonly string[]): Promise<RunResult> => run('buildah', [...storage, ...args], { env, timeoutMs: 120_000 });
  const podman = (args: readonly string[]): Promise<RunResult> =>
    run('podman', [...storage, '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', ...args], { env, timeoutMs: 120_000 });
  const repository = () => 'build/busybox';
  const remote = (tag: string) => `${reg.host}/${repository()}:${tag}`;

  beforeAll(async () => {
    reg = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'berth-e2e-buildah-'));
    // podman runs containers with runc (crun refuses the hybrid cgroup layout of some hosts).
    await writeFile(join(work, 'containers.conf'), '[engine]\nruntime = "runc"\n');
    env = { ...offlineEnv, CONTAINERS_CONF: join(work, 'containers.conf') };
    storage = ['--root', join(work, 'root'), '--runroot', join(work, 'runroot')];
    await writeFile(join(work, 'marker'), `${marker}\n`);
    const container = (await buildah(['from', 'scratch'])).stdout.trim();
    await buildah(['copy', container, BUSYBOX, '/bin/busybox']);
    await buildah(['copy', container, join(work, 'marker'), '/etc/marker']);
    await buildah(['config', '--cmd', '/bin/busybox sh', '--label', 'org.opencontainers.image.description=Built by buildah', container]);
    await buildah(['commit', container, 'localhost/berth-buildah:latest']);
    await buildah(['rm', container]);
  });

  afterAll(async () => {
    if (work) {
      await tryRun('podman', [...storage, 'rm', '--all', '--force'], { env });
      await tryRun('buildah', [...storage, 'rm', '--all'], { env });
      await tryRun('buildah', [...storage, 'rmi', '--all', '--force'], { env });
      await rm(work, { recursive: true, force: true });
    }
    await reg?.close();
  });

  async function manifest(tag: string): Promise<ImageManifest> {
    const res = await fetch(`${reg.url}/v2/${repository()}/manifests/${tag}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as ImageManifest;
  }

  it('pushes with gzip layers; they are verified, the description shows in the API and search', async () => {
    await buildah(['push', '--tls-verify=false', 'localhost/berth-buildah:latest', `docker://${remote('gzip')}`]);
    const gzip = await manifest('gzip');
    expect(gzip.layers.map((l) => l.mediaType)).toEqual(gzip.layers.map(() => expect.stringMatching(/(tar\+gzip|tar\.gzip)$/)));
    const body = (await (await fetch(`${reg.url}/_berth/api/repositories/${repository()}/manifests/gzip`)).json()) as {
      verification: string;
      config: { labels: Record<string, string> };
      layers: { diffId: string; size: number; uncompressedSize: number }[];
    };
    expect(body.verification).toBe('verified');
    expect(body.config.labels['org.opencontainers.image.description']).toBe('Built by buildah');
    for (const layer of body.layers) expect(layer.uncompressedSize).toBeGreaterThan(layer.size);
    const search = await fetch(`${reg.url}/v1/search?q=busybox`);
    expect(((await search.json()) as { results: unknown[] }).results).toEqual([
      { name: 'build/busybox', description: 'Built by buildah', star_count: 0, is_official: false, is_automated: false },
    ]);
  });

  it('podman pulls it back (checking the diff_ids) and runs it', async () => {
    await buildah(['rmi', '--force', 'localhost/berth-buildah:latest']);
    for (const tag of ['gzip']) {
      await podman(['pull', '--tls-verify=false', remote(tag)]);
      const out = await podman([
        'run',
        '--rm',
        '--pull=never',
        '--network',
        'none',
        '--ulimit',
        'nofile=1024:1024',
        '--ulimit',
        'nproc=1024:1024',
        remote(tag),
        '/bin/busybox',
        'cat',
        '/etc/marker',
      ]);
      expect(out.stdout).toBe(`${marker}\n`);
    }
  });
});
