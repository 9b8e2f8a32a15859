/**
 * Builds real OCI image layouts (with umoci and a static busybox) for the end-to-end tests,
 * and reads layouts that clients wrote back out.
 */
import { createHash, randomBytes } from 'node:crypto';
import { access, copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

/** The static busybox from Debian's busybox-static (/bin is a symlink to /usr/bin on current Debian). */
export const BUSYBOX = '/bin/busybox';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

/** A tagged manifest (or index) in an OCI layout. */
export interface LayoutImage {
  layout: string;
  tag: string;
  descriptor: Descriptor;
  /** Exact bytes of the manifest / index blob. */
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export interface BuiltImage extends LayoutImage {
  manifest: ImageManifest;
  configDigest: string;
  layerDigests: string[];
  architecture: string;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function digestHex(digest: string): string {
  const i = digest.indexOf(':');
  if (i < 0) throw new Error(`not a digest: ${digest}`);
  return digest.slice(i + 1);
}

function digestAlg(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export interface BuildOptions {
  /** Scratch directory for the files that go into the layers (created if missing). */
  workDir: string;
  /** Makes every layer's content unique (so no registry or client cache can stand in for it). */
  salt?: string;
  /** GOARCH-style architecture written into the config; default amd64. */
  architecture?: string;
  /** Bytes of random data added to the third layer; default 64 KiB. */
  randomBytes?: number;
}

/**
 * Builds a three-layer image `layout:tag` with umoci (creating the layout if needed):
 *   1. /bin/busybox (static busybox, ~2 MB) plus /etc/berth/salt
 *   2. /etc/berth/layer2.txt
 *   3. /etc/berth/layer3.bin (random bytes) and /etc/berth/layer3.txt
 * then sets the architecture and a busybox command, and garbage-collects the layout.
 */
export async function buildBusyboxImage(layout: string, tag: string, options: BuildOptions): Promise<BuiltImage> {
  const salt = options.salt ?? randomBytes(8).toString('hex');
  const arch = options.architecture ?? 'amd64';
  const src = join(options.workDir, `umoci-src-${tag}-${salt}`);
  const image = `${layout}:${tag}`;

  if (!(await exists(join(layout, 'oci-layout')))) await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);

  const l1 = join(src, 'l1');
  await mkdir(join(l1, 'bin'), { recursive: true });
  await mkdir(join(l1, 'etc', 'berth'), { recursive: true });
  await copyFile(BUSYBOX, join(l1, 'bin', 'busybox'));
  await writeFile(join(l1, 'etc', 'berth', 'salt'), `${salt}\n`);
  await run('umoci', ['insert', '--image', image, l1, '/']);

  const l2 = join(src, 'layer2.txt');
  await writeFile(l2, `layer 2 of ${tag} (${arch}) ${salt}\n`);
  await run('umoci', ['insert', '--image', image, l2, '/etc/berth/layer2.txt']);

  const l3 = join(src, 'l3');
  await mkdir(l3, { recursive: true });
  await writeFile(join(l3, 'layer3.bin'), randomBytes(options.randomBytes ?? 64 * 1024));
  await writeFile(join(l3, 'layer3.txt'), `layer 3 of ${tag} (${arch}) ${salt}\n`);
  await run('umoci', ['insert', '--image', image, l3, '/etc/berth']);

  await run('umoci', [
    'config',
    '--image',
    image,
    '--architecture',
    arch,
    '--os',
    'linux',
    '--config.cmd',
    '/bin/busybox',
    '--config.cmd',
    'sh',
    '--config.label',
    `org.example.berth.salt=${salt}`,
  ]);
  await run('umoci', ['gc', '--layout', layout]);

  const img = await readLayoutTag(layout, tag);
  const manifest = JSON.parse(img.bytes.toString('utf8')) as ImageManifest;
  if (manifest.layers.length !== 3) throw new Error(`expected 3 layers, got ${manifest.layers.length}`);
  return {
    ...img,
    manifest,
    configDigest: manifest.config.digest,
    layerDigests: manifest.layers.map((l) => l.digest),
    architecture: arch,
  };
}

/**
 * Writes an OCI image index over `images` into `layout` and tags it `tag` in index.json.
 * Each image's platform is { architecture, os: linux }.
 */
export async function writeIndex(layout: string, tag: string, images: readonly BuiltImage[]): Promise<LayoutImage> {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((img) => ({
      mediaType: img.mediaType,
      digest: img.digest,
      size: img.bytes.length,
      platform: { architecture: img.architecture, os: 'linux' },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const digest = sha256(bytes);
  await writeFile(blobPath(layout, digest), bytes);

  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
  const descriptor: Descriptor = {
    mediaType: OCI_INDEX,
    digest,
    size: bytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  };
  top.manifests = top.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  top.manifests.push(descriptor);
  await writeFile(join(layout, 'index.json'), JSON.stringify(top));
  return { layout, tag, descriptor, bytes, digest, mediaType: OCI_INDEX };
}

export function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', digestAlg(digest), digestHex(digest));
}

export async function readBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(layout, digest));
}

/** Resolves `tag` through the layout's index.json and reads the manifest/index it names. */
export async function readLayoutTag(layout: string, tag: string): Promise<LayoutImage> {
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
  const descriptor = top.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!descriptor) throw new Error(`tag ${tag} not found in ${layout}/index.json`);
  const bytes = await readBlob(layout, descriptor.digest);
  const digest = sha256(bytes);
  if (digest !== descriptor.digest) throw new Error(`${layout}: blob ${descriptor.digest} hashes to ${digest}`);
  return { layout, tag, descriptor, bytes, digest, mediaType: descriptor.mediaType };
}

/**
 * Every blob reachable from manifest/index `digest` in `layout` (itself included), by digest.
 * Each blob's bytes are checked against its digest.
 */
export async function layoutClosure(layout: string, digest: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const visit = async (d: string, isManifest: boolean): Promise<void> => {
    if (out.has(d)) return;
    const bytes = await readBlob(layout, d);
    if (sha256(bytes) !== d) throw new Error(`${layout}: blob ${d} does not match its digest`);
    out.set(d, bytes);
    if (!isManifest) return;
    const doc = JSON.parse(bytes.toString('utf8')) as Partial<ImageManifest & ImageIndex>;
    for (const child of doc.manifests ?? []) await visit(child.digest, true);
    if (doc.config) await visit(doc.config.digest, false);
    for (const layer of doc.layers ?? []) await visit(layer.digest, false);
  };
  await visit(digest, true);
  return out;
}

/** Files (not directories) under `dir`, recursively, as paths relative to `dir`; [] when it does not exist. */
export async function listFiles(dir: string): Promise<string[]> {
  if (!(await exists(dir))) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
    .sort();
}

/** Makes a tar of `files` (path inside the tar -> host file or content) for `podman import`. */
export async function makeRootfsTar(
  workDir: string,
  name: string,
  files: Record<string, { from: string } | { content: string | Buffer; mode?: number }>,
): Promise<string> {
  const root = join(workDir, `rootfs-${name}`);
  for (const [path, spec] of Object.entries(files)) {
    const dest = join(root, path);
    await mkdir(join(dest, '..'), { recursive: true });
    if ('from' in spec) await copyFile(spec.from, dest);
    else await writeFile(dest, spec.content, { mode: spec.mode ?? 0o644 });
  }
  const tarPath = join(workDir, `${name}.tar`);
  await run('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarPath, '.']);
  return tarPath;
}

export interface Config {
  architecture: string;
  os: string;
  config?: { Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; Labels?: Record<string, string> };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
  rootfs: { diff_ids: string[] };
}

/**
 * Builds images that share a base, as images built FROM one base image do: `base` holds one
 * layer (the static busybox and a salt file), and each of `names` is that base plus a layer
 * of its own (`ownBytes` random bytes) and a configuration of its own (command, environment,
 * labels), every step recorded in the history with a `created_by` of its own. Tags each
 * name in `layout`.
 */
export async function buildImagesSharingBase(
  layout: string,
  names: readonly string[],
  options: { workDir: string; ownBytes?: number },
): Promise<Record<string, BuiltImage & { config: Config }>> {
  const salt = randomBytes(8).toString('hex');
  const src = join(options.workDir, `shared-base-${salt}`);
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:base`]);
  const base = join(src, 'base');
  await mkdir(join(base, 'bin'), { recursive: true });
  await mkdir(join(base, 'etc', 'berth'), { recursive: true });
  await copyFile(BUSYBOX, join(base, 'bin', 'busybox'));
  await writeFile(join(base, 'etc', 'berth', 'salt'), `${salt}\n`);
  await run('umoci', ['insert', '--image', `${layout}:base`, '--history.created_by', `ADD base-${salt}.tar /`, base, '/']);
  const built: Record<string, BuiltImage & { config: Config }> = {};
  for (const name of names) {
    const own = join(src, name);
    await mkdir(own, { recursive: true });
    await writeFile(join(own, `${name}.bin`), randomBytes(options.ownBytes ?? 32 * 1024));
    await run('umoci', ['insert', '--image', `${layout}:base`, '--tag', name, '--history.created_by', `COPY ${name}/ /opt/${name}`, own, `/opt/${name}`]);
    await run('umoci', [
      'config',
      '--image',
      `${layout}:${name}`,
      '--architecture',
      'amd64',
      '--os',
      'linux',
      '--config.cmd',
      `/opt/${name}/run`,
      '--config.env',
      `APP=${name}`,
      '--config.label',
      `org.opencontainers.image.description=The ${name} image`,
      '--history.created_by',
      `CMD ["/opt/${name}/run"]`,
    ]);
  }
  await run('umoci', ['gc', '--layout', layout]);
  for (const name of names) {
    const img = await readLayoutTag(layout, name);
    const manifest = JSON.parse(img.bytes.toString('utf8')) as ImageManifest;
    const config = JSON.parse((await readBlob(layout, manifest.config.digest)).toString('utf8')) as Config;
    built[name] = {
      ...img,
      manifest,
      configDigest: manifest.config.digest,
      layerDigests: manifest.layers.map((l) => l.digest),
      architecture: 'amd64',
      config,
    };
  }
  return built;
}
