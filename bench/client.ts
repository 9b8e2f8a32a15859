import { createHash } from 'node:crypto';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';

/** One keep-alive pool for the whole run, as a real client would use. */
export const agent = new Agent({ keepAlive: true, maxSockets: 512 });

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  bytes: number;
}

/** A body in one piece, in parts written back to back (no copy), or streamed. */
export type Body = Buffer | Buffer[] | (() => AsyncIterable<Buffer>);

/**
 * An HTTP request on the shared agent. `keep` decides whether the response body is
 * kept (small replies) or only counted (downloads), so the client stays cheap.
 */
export function http(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: Body; keep?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (options.keep !== false) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else if (Array.isArray(body)) {
      for (const part of body.slice(0, -1)) req.write(part);
      req.end(body.at(-1));
    }
    else {
      (async () => {
        for await (const chunk of body()) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch(reject);
    }
  });
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function expectStatus(reply: Reply, expected: number, what: string): Reply {
  if (reply.status !== expected) throw new Error(`${what}: expected ${expected}, got ${reply.status} ${reply.body.toString().slice(0, 300)}`);
  return reply;
}

/** Resolves a Location header (absolute for Distribution, relative for Berth) against the registry. */
function resolveLocation(base: string, location: string | undefined): string {
  if (!location) throw new Error('no Location header');
  return new URL(location, base).toString();
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

export async function startUpload(base: string, repo: string): Promise<string> {
  const reply = expectStatus(await http(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), 202, 'POST upload');
  return resolveLocation(base, reply.headers.location);
}

/** POST a session, then PUT the whole blob: the monolithic flow both registries support. */
export async function pushBlob(base: string, repo: string, blob: Body, digest: string, size: number): Promise<void> {
  const location = await startUpload(base, repo);
  expectStatus(
    await http(withDigest(location, digest), {
      method: 'PUT',
      body: blob,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
    }),
    201,
    'PUT blob',
  );
}

/** POST, PATCH in chunks of `chunkSize` with Content-Range, PUT with the digest. */
export async function pushBlobChunked(base: string, repo: string, blob: Buffer, digest: string, chunkSize: number): Promise<void> {
  let location = await startUpload(base, repo);
  for (let start = 0; start < blob.length; start += chunkSize) {
    const chunk = blob.subarray(start, start + chunkSize);
    const reply = expectStatus(
      await http(location, {
        method: 'PATCH',
        body: chunk,
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `${start}-${start + chunk.length - 1}`,
          'Content-Length': chunk.length,
        },
      }),
      202,
      'PATCH chunk',
    );
    location = resolveLocation(base, reply.headers.location);
  }
  expectStatus(await http(withDigest(location, digest), { method: 'PUT' }), 201, 'PUT digest');
}

export async function blobExists(base: string, repo: string, digest: string): Promise<boolean> {
  return (await http(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status === 200;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * An image manifest. The load generator's layers are random bytes, uncompressed layers
 * to a registry (`…v1.tar`): Berth checks every layer against its config's diff_ids,
 * which for an uncompressed layer is the layer's own digest (see `imageConfig`).
 */
export function imageManifest(config: { digest: string; size: number }, layers: { digest: string; size: number }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    }),
  );
}

/** An image config whose rootfs lists the (uncompressed) layers' digests as their diff_ids. */
export function imageConfig(fields: Record<string, unknown>, layers: { digest: string }[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', ...fields, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
}

export async function putManifest(base: string, repo: string, reference: string, manifest: Buffer): Promise<void> {
  expectStatus(
    await http(`${base}/v2/${repo}/manifests/${reference}`, {
      method: 'PUT',
      body: manifest,
      headers: { 'Content-Type': OCI_MANIFEST },
    }),
    201,
    'PUT manifest',
  );
}

export async function getJson<T>(url: string): Promise<{ body: T; link: string | undefined }> {
  const reply = expectStatus(await http(url), 200, `GET ${url}`);
  return { body: JSON.parse(reply.body.toString()) as T, link: reply.headers.link as string | undefined };
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
