/**
 * End to end with a real Docker engine (dockerd 20.10 + docker CLI) against a real Berth on
 * loopback: build, push (fresh, "Layer already exists", "Mounted from"), pull by tag and by
 * digest, run, manifest lists, and pulls through `registry-mirrors`.
 *
 * The tests in this file run in order and build on each other (one registry, one dockerd).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, staticBusybox, writeBuildContext, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

interface PushResult {
  /** Final status per short layer id: "Pushed", "Layer already exists", "Mounted from x/y". */
  layers: Map<string, string>;
  digest: string;
  size: number;
  output: string;
}

/** Parses the (non-TTY) output of `docker push`. */
function parsePush(output: string): PushResult {
  const layers = new Map<string, string>();
  for (const m of output.matchAll(/^([0-9a-f]{12}): (Pushed|Layer already exists|Mounted from \S+)\s*$/gm)) {
    layers.set(m[1]!, m[2]!);
  }
  const d = /: digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(output);
  if (d === null) throw new Error(`no digest in docker push output:\n${output}`);
  return { layers, digest: d[1]!, size: Number(d[2]), output };
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('docker engine against Berth', () => {
  let reg: TestRegistry;
  let dockerd: Dockerd;
  let work: string;
  let host: string;

  // Filled in as the flow goes on.
  let app1: PushResult;
  let app2: PushResult;
  let app1ImageId: string;
  let app2ImageId: string;

  const random = randomBytes(8 * 1024 * 1024);
  const randomSha256 = createHash('sha256').update(random).digest('hex');

  const docker = (...args: string[]) => dockerd.dockerOk(args);
  const imageId = async (ref: string) => (await docker('image', 'inspect', '--format', '{{.Id}}', ref)).stdout.trim();

  /** Removes every local image (tags, and the legacy builder's intermediate images); nothing is left to reuse. */
  async function removeAllImages() {
    await docker('image', 'prune', '--all', '--force');
    expect((await docker('images', '--all', '--quiet')).stdout.trim()).toBe('');
  }

  beforeAll(async () => {
    reg = await startRegistry();
    host = reg.host;
    dockerd = await startDockerd({ insecureRegistries: [host], registryMirrors: [reg.url] });
    work = await mkdtemp(join(tmpdir(), 'berth-docker-e2e-'));
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

  it('pushes a multi-layer image built FROM scratch', async () => {
    const ctx = await writeBuildContext(
      work,
      'app1',
      [
        'FROM scratch',
        'COPY busybox /bin/busybox',
        'COPY a.txt /data/a.txt',
        'COPY b.txt random.bin /data/',
        'CMD ["/bin/busybox", "sh"]',
        '',
      ].join('\n'),
      {
        busybox: { copyFrom: staticBusybox() },
        'a.txt': 'layer a\n',
        'b.txt': 'layer b\n',
        // Incompressible, so a layer of several MiB goes over the wire (streamed upload and download).
        'random.bin': random,
      },
    );
    await docker('build', '-q', '-t', `${host}/team/app:1.0`, ctx);
    app1ImageId = await imageId(`${host}/team/app:1.0`);

    app1 = parsePush((await docker('push', `${host}/team/app:1.0`)).stdout);
    expect([...app1.layers.values()], app1.output).toEqual(['Pushed', 'Pushed', 'Pushed']);

    // The registry serves exactly what docker pushed.
    const res = await fetch(`${reg.url}/v2/team/app/manifests/1.0`, { headers: { Accept: DOCKER_MANIFEST } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(DOCKER_MANIFEST);
    expect(res.headers.get('docker-content-digest')).toBe(app1.digest);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.length).toBe(app1.size);
    expect(sha256(body)).toBe(app1.digest);
    const manifest = JSON.parse(Buffer.from(body).toString('utf8')) as {
      config: { digest: string };
      layers: { digest: string; size: number }[];
    };
    expect(manifest.config.digest).toBe(app1ImageId);
    expect(manifest.layers).toHaveLength(3);
    for (const layer of manifest.layers) {
      const head = await fetch(`${reg.url}/v2/team/app/blobs/${layer.digest}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(layer.size);
    }
  });

  it('a second image sharing the base layers reports "Layer already exists" for them', async () => {
    const ctx = await writeBuildContext(
      work,
      'app2',
      [`FROM ${host}/team/app:1.0`, 'COPY c.txt /data/c.txt', ''].join('\n'),
      { 'c.txt': 'layer c\n' },
    );
    await docker('build', '-q', '-t', `${host}/team/app:2.0`, ctx);
    app2ImageId = await imageId(`${host}/team/app:2.0`);

    app2 = parsePush((await docker('push', `${host}/team/app:2.0`)).stdout);
    expect(app2.layers.size, app2.output).toBe(4);
    for (const id of app1.layers.keys()) expect(app2.layers.get(id), app2.output).toBe('Layer already exists');
    const fresh = [...app2.layers].filter(([id]) => !app1.layers.has(id));
    expect(fresh.map(([, status]) => status), app2.output).toEqual(['Pushed']);
    expect(app2.digest).not.toBe(app1.digest);
  });

  it('pushing to another repository mounts the layers ("Mounted from team/app")', async () => {
    await docker('tag', `${host}/team/app:1.0`, `${host}/other/app:1.0`);
    const other = parsePush((await docker('push', `${host}/other/app:1.0`)).stdout);
    expect(other.layers.size, other.output).toBe(3);
    for (const status of other.layers.values()) expect(status, other.output).toBe('Mounted from team/app');
    expect(other.digest).toBe(app1.digest);

    const res = await fetch(`${reg.url}/v2/other/app/manifests/1.0`, { method: 'HEAD', headers: { Accept: DOCKER_MANIFEST } });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(app1.digest);
  });

  it('pulls by tag and by digest into an empty engine and runs the image', async () => {
    await removeAllImages();

    // By tag.
    const byTag = await docker('pull', `${host}/team/app:1.0`);
    expect(byTag.stdout).toContain(`Digest: ${app1.digest}`);
    expect(await imageId(`${host}/team/app:1.0`)).toBe(app1ImageId);
    const repoDigest = (await docker('image', 'inspect', '--format', '{{index .RepoDigests 0}}', `${host}/team/app:1.0`)).stdout.trim();
    expect(repoDigest).toBe(`${host}/team/app@${app1.digest}`);
    const hello = await docker('run', '--rm', '--network', 'none', `${host}/team/app:1.0`, 'busybox', 'echo', 'hello');
    expect(hello.stdout.trim()).toBe('hello');

    await removeAllImages();

    // By digest, of the image with four layers; its content must be intact.
    const ref = `${host}/team/app@${app2.digest}`;
    const byDigest = await docker('pull', ref);
    expect(byDigest.stdout).toContain(`Digest: ${app2.digest}`);
    expect(await imageId(ref)).toBe(app2ImageId);
    const cat = await docker('run', '--rm', '--network', 'none', ref, 'busybox', 'cat', '/data/a.txt', '/data/b.txt', '/data/c.txt');
    expect(cat.stdout).toBe('layer a\nlayer b\nlayer c\n');
    const sum = await docker('run', '--rm', '--network', 'none', ref, 'busybox', 'sha256sum', '/data/random.bin');
    expect(sum.stdout.split(' ')[0]).toBe(randomSha256);
    const hello2 = await docker('run', '--rm', '--network', 'none', ref, 'busybox', 'echo', 'hello');
    expect(hello2.stdout.trim()).toBe('hello');
  });

  it('creates, pushes and inspects a manifest list with `docker manifest`', async () => {
    // `docker manifest` reads the images from the registry, so they need not be local.
    const list = `${host}/team/multi:1.0`;
    const amd = `${host}/team/app:1.0`;
    const arm = `${host}/team/app:2.0`;
    await docker('manifest', 'create', '--insecure', list, amd, arm);
    await docker('manifest', 'annotate', '--os', 'linux', '--arch', 'amd64', list, amd);
    await docker('manifest', 'annotate', '--os', 'linux', '--arch', 'arm64', '--variant', 'v8', list, arm);
    // Pushing to team/multi makes docker mount the blobs and put the child manifests there first.
    const pushed = await docker('manifest', 'push', '--insecure', '--purge', list);
    // Output: "Pushed ref <list repo>@<child> with digest: <child>" per child, then the list digest alone.
    for (const child of [app1.digest, app2.digest]) {
      expect(pushed.stdout).toContain(`Pushed ref ${host}/team/multi@${child} with digest: ${child}`);
    }
    const listDigest = /^(sha256:[0-9a-f]{64})\s*$/m.exec(pushed.stdout)?.[1];
    expect(listDigest, pushed.stdout + pushed.stderr).toBeDefined();

    const inspected = JSON.parse((await docker('manifest', 'inspect', '--insecure', list)).stdout) as {
      mediaType: string;
      manifests: { mediaType: string; digest: string; platform: { architecture: string; os: string; variant?: string } }[];
    };
    expect(inspected.mediaType).toBe(DOCKER_MANIFEST_LIST);
    expect(inspected.manifests).toHaveLength(2);
    const byArch = new Map(inspected.manifests.map((m) => [m.platform.architecture, m]));
    expect(byArch.get('amd64')).toMatchObject({ mediaType: DOCKER_MANIFEST, digest: app1.digest, platform: { os: 'linux' } });
    expect(byArch.get('arm64')).toMatchObject({
      mediaType: DOCKER_MANIFEST,
      digest: app2.digest,
      platform: { os: 'linux', variant: 'v8' },
    });

    // The Berth API serves the list with its media type and digest...
    const res = await fetch(`${reg.url}/v2/team/multi/manifests/1.0`, { headers: { Accept: DOCKER_MANIFEST_LIST } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(DOCKER_MANIFEST_LIST);
    expect(res.headers.get('docker-content-digest')).toBe(listDigest);
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(listDigest);
    // ...and the children now live in team/multi too.
    for (const child of [app1.digest, app2.digest]) {
      const head = await fetch(`${reg.url}/v2/team/multi/manifests/${child}`, { method: 'HEAD', headers: { Accept: DOCKER_MANIFEST } });
      expect(head.status, child).toBe(200);
    }

    // The engine resolves the list to the linux/amd64 entry when pulling.
    await removeAllImages();
    const pull = await docker('pull', list);
    expect(pull.stdout).toContain(`Digest: ${listDigest}`);
    expect(await imageId(list)).toBe(app1ImageId);
    const hello = await docker('run', '--rm', '--network', 'none', list, 'busybox', 'echo', 'hello');
    expect(hello.stdout.trim()).toBe('hello');
  });

  it('pulls `busybox` from Docker Hub names through registry-mirrors as library/busybox', async () => {
    await docker('tag', `${host}/team/multi:1.0`, `${host}/library/busybox:latest`);
    const pushed = parsePush((await docker('push', `${host}/library/busybox:latest`)).stdout);
    expect(pushed.digest).toBe(app1.digest);
    await removeAllImages();

    // No registry but Berth is reachable (proxies are dead): this can only come from the mirror.
    const pull = await docker('pull', 'busybox:latest');
    expect(pull.stdout).toContain(`Digest: ${app1.digest}`);
    expect(await imageId('busybox:latest')).toBe(app1ImageId);
    const hello = await docker('run', '--rm', '--network', 'none', 'busybox:latest', 'busybox', 'echo', 'hello');
    expect(hello.stdout.trim()).toBe('hello');
  });

  it('lists the repositories in /v2/_catalog and the tags of team/app', async () => {
    const catalog = await fetch(`${reg.url}/v2/_catalog`);
    expect(catalog.status).toBe(200);
    expect(await catalog.json()).toEqual({ repositories: ['library/busybox', 'other/app', 'team/app', 'team/multi'] });

    const tags = await fetch(`${reg.url}/v2/team/app/tags/list`);
    expect(tags.status).toBe(200);
    const list = (await tags.json()) as { name: string; tags: string[] };
    expect(list.name).toBe('team/app');
    // Order and pagination are the HTTP suite's business (Distribution 2.8.2 does not sort tags).
    expect([...list.tags].sort()).toEqual(['1.0', '2.0']);
  });
});
