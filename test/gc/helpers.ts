import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { call, descriptor, MT, pushBlob, pushManifest, randomBlob, uniq, type Pushed } from '../helpers/oci.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

const ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerManifest, MT.dockerList].join(', ');

/** Runs the built `berth` on `dataDir` and waits for it. */
export function berth(args: string[], dataDir: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, BERTH_STORAGE_ROOT: dataDir, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Same, without blocking the event loop (for tests that keep a registry busy meanwhile). */
export function berthAsync(
  args: string[],
  dataDir: string,
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, BERTH_STORAGE_ROOT: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Pulls `ref` completely as a client would: the manifest (its bytes must hash to the
 * digest), every blob (re-hashed) and, for an index, every child. Returns the problems.
 */
export async function pullProblems(base: string, repo: string, ref: string): Promise<string[]> {
  const problems: string[] = [];
  const res = await call(base, 'GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  if (res.status !== 200) return [`${repo}:${ref} manifest answered ${res.status} ${res.text.slice(0, 200)}`];
  const digest = digestOf(res.body);
  if (ref.includes(':') && digest !== ref) problems.push(`${repo}@${ref} served bytes hashing to ${digest}`);
  const manifest = res.json<{ manifests?: { digest: string }[]; config?: { digest: string }; layers?: { digest: string }[] }>();
  for (const child of manifest.manifests ?? []) problems.push(...(await pullProblems(base, repo, child.digest)));
  for (const blob of [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])]) {
    const got = await call(base, 'GET', `/v2/${repo}/blobs/${blob.digest}`);
    if (got.status !== 200) problems.push(`${repo}@${digest} blob ${blob.digest} answered ${got.status}`);
    else if (digestOf(got.body) !== blob.digest) problems.push(`${repo}@${digest} blob ${blob.digest} is corrupt`);
  }
  return problems;
}

export async function expectPulls(base: string, repo: string, ref: string): Promise<void> {
  expect(await pullProblems(base, repo, ref)).toEqual([]);
}

export interface Image extends Pushed {
  config: Buffer;
  layers: Buffer[];
}

/** Pushes config + `layers` (plus one fresh unique layer unless `unique` is 0) and the manifest. */
export async function pushImageWith(
  base: string,
  repo: string,
  ref: string | undefined,
  layers: Buffer[],
  options: { unique?: number; extra?: Record<string, unknown> } = {},
): Promise<Image> {
  const all = [...layers, ...Array.from({ length: options.unique ?? 1 }, () => randomBlob(1000 + Math.floor(Math.random() * 3000)))];
  // Uncompressed layers: their diff_ids are their digests.
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: uniq(), rootfs: { type: 'layers', diff_ids: all.map(digestOf) } }),
  );
  await pushBlob(base, repo, config);
  for (const layer of all) await pushBlob(base, repo, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: descriptor(MT.ociConfig, config),
    layers: all.map((l) => descriptor(MT.ociTarLayer, l)),
    ...options.extra,
  };
  const pushed = await pushManifest(base, repo, ref, manifest, MT.ociManifest);
  return { ...pushed, config, layers: all };
}

/** Pushes an OCI index of `children` (already pushed manifests). */
export async function pushIndex(base: string, repo: string, ref: string | undefined, children: Pushed[]): Promise<Pushed> {
  return pushManifest(
    base,
    repo,
    ref,
    {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: children.map((c, i) => ({
        mediaType: c.mediaType,
        digest: c.digest,
        size: c.bytes.length,
        platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' },
      })),
    },
    MT.ociIndex,
  );
}

export async function gc(base: string, dryRun = false): Promise<any> {
  const res = await call(base, 'POST', `/_berth/admin/gc${dryRun ? '?dryRun=true' : ''}`);
  expect(res.status, res.text).toBe(200);
  return res.json();
}

export async function usage(base: string, repository?: string): Promise<any> {
  const res = await call(base, 'GET', `/_berth/admin/usage${repository ? `?repository=${repository}` : ''}`);
  expect(res.status, res.text).toBe(200);
  return res.json();
}
