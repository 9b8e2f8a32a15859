/**
 * The pull-through cache with the clients it is for: a Docker engine whose daemon.json
 * `registry-mirrors` points at the mirror, and containerd's `ctr --hosts-dir` (which adds
 * `?ns=docker.io`). The mirror's upstream "docker.io" is a second Berth in token mode on
 * loopback, behind a counting proxy. Docker Hub itself is unreachable (dead proxies), so a
 * successful pull can only have come through the mirror.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { offlineEnv, run } from '../helpers/exec.js';
import { buildBusyboxImage, type BuiltImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { CountingProxy, MIRROR, PUSHER, startUpstream, type Upstream } from './helpers.js';

describe('pull-through cache with docker registry-mirrors and containerd hosts.toml', () => {
  let work: string;
  let upstream: Upstream | undefined;
  let front: CountingProxy | undefined;
  let mirror: TestRegistry | undefined;
  let dockerd: Dockerd | undefined;
  let image: BuiltImage;

  const blobGets = () => front!.count('GET', /\/blobs\/sha256:/);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-proxy-clients-'));
    const layout = join(work, 'layout');
    image = await buildBusyboxImage(layout, 'v1', { workDir: join(work, 'build') });

    const upstreamDir = join(work, 'upstream');
    const seed = await startRegistry({ storage: { fsync: false } }, { dataDir: upstreamDir, keepData: true, users: [PUSHER, MIRROR] });
    await seed.close();
    upstream = await startUpstream(upstreamDir);
    await run(
      'skopeo',
      ['copy', '--dest-tls-verify=false', '--dest-creds', `${PUSHER.name}:${PUSHER.password}`, `oci:${layout}:v1`, `docker://127.0.0.1:${upstream.port}/library/bbx:v1`],
      { env: offlineEnv },
    );
    const upstreamUrl = upstream.url;
    front = new CountingProxy(() => upstreamUrl);
    await front.start();
    mirror = await startRegistry({
      storage: { fsync: false },
      proxy: {
        upstreams: [
          { name: 'docker.io', url: front.url, username: MIRROR.name, password: MIRROR.password },
          // Another name for the same registry, so that only ?ns= can select it.
          { name: 'upstream.test', url: front.url, username: MIRROR.name, password: MIRROR.password },
        ],
        defaultUpstream: 'docker.io',
      },
    });
    dockerd = await startDockerd({ registryMirrors: [mirror.url] });
  }, 600_000);

  afterAll(async () => {
    try {
      await dockerd?.stop();
    } finally {
      await mirror?.close();
      await front?.close();
      await upstream?.app.close();
      if (work) await rm(work, { recursive: true, force: true });
    }
  });

  it('ctr pulls upstream.test/library/bbx through hosts.toml: ?ns=upstream.test selects the upstream; every blob is fetched once', async () => {
    const hostsDir = join(work, 'hosts');
    await mkdir(join(hostsDir, 'upstream.test'), { recursive: true });
    await writeFile(
      join(hostsDir, 'upstream.test', 'hosts.toml'),
      ['server = "https://upstream.test"', '', `[host."${mirror!.url}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
    await dockerd!.ctrOk('mirror', ['images', 'pull', '--hosts-dir', hostsDir, 'upstream.test/library/bbx:v1']);
    const list = (await dockerd!.ctrOk('mirror', ['images', 'ls'])).stdout;
    expect(list).toContain(image.digest);
    // Without ?ns= the name would have gone to the default upstream, docker.io.
    const catalog = (await (await fetch(`${mirror!.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['upstream.test/library/bbx']);
    expect(blobGets()).toBe(1 + image.layerDigests.length);
  });

  it('docker pulls bbx through registry-mirrors, taking the blobs from the store (no upstream blob download), and runs it', async () => {
    const pull = await dockerd!.dockerOk(['pull', 'bbx:v1']);
    expect(pull.stdout).toContain(`Digest: ${image.digest}`);
    const hello = await dockerd!.dockerOk(['run', '--rm', '--network', 'none', 'bbx:v1', 'busybox', 'echo', 'hello']);
    expect(hello.stdout.trim()).toBe('hello');
    expect(blobGets()).toBe(1 + image.layerDigests.length);
    const catalog = (await (await fetch(`${mirror!.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['docker.io/library/bbx', 'upstream.test/library/bbx']);
  });
});
