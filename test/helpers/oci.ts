/**
 * Small black-box OCI client for the API tests: digests, raw HTTP, and push helpers.
 * Everything goes over node:http (raw paths, one connection per request).
 */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  /** An uncompressed layer: its diff_id is its own digest. */
  ociTarLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** The OCI empty descriptor's blob: `{}`. */
export const EMPTY_BLOB = Buffer.from('{}');

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function sha512(data: Uint8Array | string): string {
  return `sha512:${createHash('sha512').update(data).digest('hex')}`;
}

export function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/** Unique random bytes, so no two tests ever share a blob by accident. */
export function randomBlob(size = 64): Buffer {
  return randomBytes(size);
}

export function uniq(prefix = 'r'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

export interface Res {
  status: number;
  headers: Headers;
  /** Header names as the server wrote them (case kept). */
  headerNames: string[];
  body: Buffer;
  text: string;
  json<T = any>(): T;
}

export interface ReqInit {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/**
 * One HTTP request with the body buffered. `path` may be a path or an absolute URL (e.g. a
 * Location). Goes over node:http with a fresh connection per request (Connection: close), so
 * no keep-alive socket outlives a test and closing a registry never waits for client pools.
 */
export async function call(base: string, method: string, path: string, init: ReqInit = {}): Promise<Res> {
  const u = new URL(path, base);
  return raw(u.origin, method, u.pathname + u.search, init);
}

function wrap(status: number, headers: Headers, headerNames: string[], body: Buffer): Res {
  const text = body.toString('utf8');
  return {
    status,
    headers,
    headerNames,
    body,
    text,
    json<T>() {
      return JSON.parse(text) as T;
    },
  };
}

/**
 * Raw HTTP/1.1 request: the path is sent byte for byte (fetch would resolve `..` and `%2e%2e`).
 */
export function raw(base: string, method: string, path: string, init: ReqInit = {}): Promise<Res> {
  const u = new URL(base);
  const body = typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        agent: false, // one connection per request: nothing lingers when a registry closes
        method,
        path,
        headers: { ...(init.headers ?? {}), ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            headers.set(k, Array.isArray(v) ? v.join(', ') : v);
          }
          const names = res.rawHeaders.filter((_, i) => i % 2 === 0);
          resolve(wrap(res.statusCode ?? 0, headers, names, Buffer.concat(chunks)));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

export function expectApiVersion(res: Res): void {
  expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
}

/** Asserts an OCI error response: status, JSON content type, API version header and the code. */
export function expectError(res: Res, status: number, code: string): any {
  expect({ status: res.status, body: res.text.slice(0, 500) }).toMatchObject({ status });
  expectApiVersion(res);
  expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  const body = res.json();
  expect(Array.isArray(body.errors)).toBe(true);
  expect(body.errors.length).toBeGreaterThan(0);
  expect(body.errors[0].code).toBe(code);
  expect(typeof body.errors[0].message).toBe('string');
  return body.errors[0];
}

/** Asserts a HEAD error response (no body to check). */
export function expectHeadError(res: Res, status: number): void {
  expect(res.status).toBe(status);
  expectApiVersion(res);
  expect(res.body.length).toBe(0);
}

/** Resolves a Location header against the registry and returns its path (query dropped). */
export function locationPath(res: Res, base: string): string {
  const loc = res.headers.get('location');
  expect(loc, 'Location header').toBeTruthy();
  return new URL(loc!, base).pathname;
}

/** Location as a full URL (query kept: some registries carry upload state in it). */
export function locationUrl(res: Res, base: string): string {
  const loc = res.headers.get('location');
  expect(loc, 'Location header').toBeTruthy();
  return new URL(loc!, base).toString();
}

export function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

export const OCTET = { 'content-type': 'application/octet-stream' };

/** Starts an upload session; returns the absolute session URL and its uuid (last path segment). */
export async function startUpload(base: string, repo: string): Promise<{ url: string; uuid: string; res: Res }> {
  const res = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  expect(res.status, res.text).toBe(202);
  const url = locationUrl(res, base);
  const uuid = new URL(url).pathname.split('/').pop()!;
  return { url, uuid, res };
}

/** Pushes a blob with POST + PUT (final chunk in the PUT). Returns the digest. */
export async function pushBlob(base: string, repo: string, data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  const digest = sha256(bytes);
  const { url } = await startUpload(base, repo);
  const res = await call(base, 'PUT', withQuery(url, { digest }), { headers: OCTET, body: bytes });
  expect(res.status, res.text).toBe(201);
  return digest;
}

export function descriptor(mediaType: string, bytes: Uint8Array | string, extra: Record<string, unknown> = {}) {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return { mediaType, digest: sha256(buf), size: buf.length, ...extra };
}

export async function putManifest(
  base: string,
  repo: string,
  ref: string,
  body: string | Uint8Array | object,
  mediaType?: string,
): Promise<Res> {
  const bytes =
    typeof body === 'string' || body instanceof Uint8Array ? body : Buffer.from(JSON.stringify(body, null, 2));
  return call(base, 'PUT', `/v2/${repo}/manifests/${ref}`, {
    headers: mediaType ? { 'content-type': mediaType } : {},
    body: bytes,
  });
}

export interface Pushed {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  json: any;
}

/** Serialises (pretty printed, so exact-bytes checks mean something) and PUTs; expects 201. */
export async function pushManifest(
  base: string,
  repo: string,
  ref: string | undefined,
  manifest: object,
  mediaType: string,
): Promise<Pushed> {
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3) + '\n');
  const digest = sha256(bytes);
  const res = await putManifest(base, repo, ref ?? digest, bytes, mediaType);
  expect(res.status, res.text).toBe(201);
  return { bytes, digest, mediaType, json: manifest };
}

/**
 * A gzip layer of `size` random bytes: its bytes and its diff_id (the uncompressed digest).
 * Berth checks layers against their config's diff_ids, so test images are made of real ones.
 */
export function gzipLayer(size = 128): { bytes: Buffer; diffId: string } {
  const tar = randomBlob(size);
  return { bytes: gzipSync(tar), diffId: sha256(tar) };
}

/** An image config (OCI and Docker alike) whose rootfs lists `diffIds`; `extra` adds or replaces fields. */
export function imageConfig(diffIds: readonly string[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: uniq(), rootfs: { type: 'layers', diff_ids: diffIds }, ...extra }),
  );
}

/** Pushes a config + one layer and returns an (unpushed) image manifest of the given flavour. */
export async function imageManifest(
  base: string,
  repo: string,
  flavour: 'oci' | 'docker' = 'oci',
  extra: Record<string, unknown> = {},
): Promise<object> {
  const { bytes: layer, diffId } = gzipLayer();
  const config = imageConfig([diffId]);
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, layer);
  const docker = flavour === 'docker';
  return {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerManifest : MT.ociManifest,
    config: descriptor(docker ? MT.dockerConfig : MT.ociConfig, config),
    layers: [descriptor(docker ? MT.dockerLayer : MT.ociLayer, layer)],
    ...extra,
  };
}

/** Pushes a full image (blobs + manifest). */
export async function pushImage(
  base: string,
  repo: string,
  ref?: string,
  flavour: 'oci' | 'docker' = 'oci',
  extra: Record<string, unknown> = {},
): Promise<Pushed> {
  const m = await imageManifest(base, repo, flavour, extra);
  return pushManifest(base, repo, ref, m, flavour === 'docker' ? MT.dockerManifest : MT.ociManifest);
}

/** All file paths under dir (recursively) whose path contains `needle`. Missing dir -> []. */
export async function filesMatching(dir: string, needle: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .map((e) => join(e.parentPath ?? (e as any).path, e.name))
    .filter((p) => p.includes(needle));
}

/** Parses `Link: <url>; rel="next"`; returns the URL or undefined. */
export function nextLink(res: Res): string | undefined {
  const link = res.headers.get('link');
  if (!link) return undefined;
  const m = /^<([^>]+)>;\s*rel="next"$/.exec(link.trim());
  expect(m, `malformed Link header: ${link}`).toBeTruthy();
  return m![1];
}
