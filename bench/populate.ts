import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobFiles } from '../src/blobstore/files.js';
import type { ImageRecord } from '../src/db/images.js';
import { MetadataIndex } from '../src/db/index.js';
import { tryParseDigest } from '../src/digest.js';
import { imageManifest, OCI_MANIFEST, sha256 } from './client.js';

/**
 * For the scaling figures (j), both registries get `count` repositories (scale/rNNNNNN,
 * one image tagged latest each) written straight into their own storage: pushing
 * 100,000 repositories over HTTP would take the reference registry most of an hour.
 * Berth's rows go through its own index code; Distribution's through its documented
 * filesystem layout. Both are then started and queried over HTTP only.
 */
const config = Buffer.from('{"architecture":"amd64","os":"linux","scale":true,"rootfs":{"type":"layers","diff_ids":[]}}');
const configD = { digest: sha256(config), size: config.length };
const manifest = imageManifest(configD, []);
const manifestDigest = sha256(manifest);

export const repoName = (i: number) => `scale/r${String(i).padStart(6, '0')}`;

/** `describe`: the description of repository i's image (docker search shows it). */
export async function populateBerth(dataDir: string, count: number, describe?: (i: number) => string): Promise<void> {
  const files = new BlobFiles(dataDir, false);
  await files.init();
  const temp = files.tempPath('config');
  writeFileSync(temp, config);
  await files.publish(temp, tryParseDigest(configD.digest)!);
  const index = new MetadataIndex(join(dataDir, 'index.db'), { durable: false });
  const record = {
    digest: manifestDigest,
    mediaType: OCI_MANIFEST,
    artifactType: 'application/vnd.oci.image.config.v1+json',
    subject: null,
    annotations: null,
    size: manifest.length,
    content: manifest,
    blobs: [configD.digest],
    children: [],
  };
  // What Berth's own push would index for the image (so nothing is left for its startup to index).
  const image: ImageRecord = {
    kind: 'image',
    configDigest: configD.digest,
    configMediaType: 'application/vnd.oci.image.config.v1+json',
    configSize: configD.size,
    configRead: true,
    created: null,
    author: null,
    os: 'linux',
    architecture: 'amd64',
    variant: null,
    details: null,
    history: '[]',
    platforms: null,
    description: null,
    contentBytes: configD.size,
    verification: 'verified',
    layers: [],
  };
  for (let i = 0; i < count; i++) {
    await index.addBlob(repoName(i), configD.digest, configD.size);
    await index.putManifest(repoName(i), record, 'latest', () => {}, { ...image, description: describe?.(i) ?? null });
  }
  index.close();
}

function link(path: string, digest: string): void {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'link'), digest);
}

export function populateDistribution(dataDir: string, count: number): void {
  const v2 = join(dataDir, 'docker/registry/v2');
  for (const [digest, bytes] of [
    [configD.digest, config],
    [manifestDigest, manifest],
  ] as const) {
    const hex = digest.slice('sha256:'.length);
    const dir = join(v2, 'blobs/sha256', hex.slice(0, 2), hex);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'data'), bytes);
  }
  const configHex = configD.digest.slice(7);
  const manifestHex = manifestDigest.slice(7);
  for (let i = 0; i < count; i++) {
    const repo = join(v2, 'repositories', repoName(i));
    link(join(repo, '_layers/sha256', configHex), configD.digest);
    link(join(repo, '_manifests/revisions/sha256', manifestHex), manifestDigest);
    link(join(repo, '_manifests/tags/latest/current'), manifestDigest);
    link(join(repo, '_manifests/tags/latest/index/sha256', manifestHex), manifestDigest);
  }
}
