/**
 * The worked LAN example of the README, plus a few rules that exercise every rule path:
 * admins do everything, the ci user pushes to ci/**, any authenticated user reads
 * internal/**, nobody but admins reads secret/*, and everybody pulls the rest.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { pushImage, type Pushed } from '../helpers/oci.js';
import { startRegistry } from '../helpers/registry.js';
import { basic, type SeedUser } from '../helpers/users.js';

export const USERS = {
  alice: { name: 'alice', password: 'alice-Pw-1', groups: ['admins'] },
  bob: { name: 'bob', password: 'bob:colon:Pw' }, // an admin through auth.groups
  ci: { name: 'ci', password: 'ci-Pw-2' },
  reader: { name: 'reader', password: 'reader-Pw-3' },
} satisfies Record<string, SeedUser>;

export const as = (u: { name: string; password: string }) => ({ authorization: basic(u.name, u.password) });

export const LAN_AUTH = {
  groups: { admins: ['bob'] },
  adminGroups: ['admins'],
  rules: [
    { repositories: '**', groups: ['admins'], actions: ['pull', 'push', 'delete'] },
    { repositories: 'ci/**', users: ['ci'], actions: ['pull', 'push'] },
    { repositories: 'internal/**', users: ['authenticated'], actions: ['pull'] },
    { repositories: ['internal/**', 'secret/*'], users: ['*'], actions: [] },
    { repositories: '**', users: ['*'], actions: ['pull'] },
  ],
};

export interface Seeded {
  dataDir: string;
  images: Record<'ci' | 'team' | 'internal' | 'secret', Pushed>;
}

/** A data directory with the users and one image in each of ci/app, team/app, internal/app and secret/x. */
export async function seedLan(): Promise<Seeded> {
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-auth-'));
  const reg = await startRegistry({}, { dataDir, users: Object.values(USERS) });
  try {
    const images = {
      ci: await pushImage(reg.url, 'ci/app', 'v1'),
      team: await pushImage(reg.url, 'team/app', 'v1'),
      internal: await pushImage(reg.url, 'internal/app', 'v1'),
      secret: await pushImage(reg.url, 'secret/x', 'v1'),
    };
    return { dataDir, images };
  } finally {
    await reg.close();
  }
}

/** The first layer's digest of a pushed image. */
export const layerOf = (image: Pushed): string => (image.json as { layers: Array<{ digest: string }> }).layers[0]!.digest;

/** One request from a chosen loopback source address (127.0.0.x), so per-address limits can be told apart. */
export function requestFrom(
  source: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: source, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Pushes a one-layer image with the given Authorization header; returns each step's status. */
export async function pushAs(base: string, repo: string, tag: string, headers: Record<string, string>) {
  const { call, descriptor, MT, randomBlob, sha256 } = await import('../helpers/oci.js');
  const layer = randomBlob(256);
  // An uncompressed layer: its diff_id is its digest.
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBlob(8).toString('hex'), rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }),
  );
  const statuses: number[] = [];
  for (const blob of [config, layer]) {
    const res = await call(base, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, {
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: blob,
    });
    statuses.push(res.status);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(MT.ociConfig, config),
      layers: [descriptor(MT.ociTarLayer, layer)],
    }),
  );
  const res = await call(base, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    headers: { ...headers, 'content-type': MT.ociManifest },
    body: manifest,
  });
  statuses.push(res.status);
  return { statuses, last: res, digest: sha256(manifest) };
}
