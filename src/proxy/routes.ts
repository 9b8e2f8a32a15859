import { parseDigest } from '../digest.js';
import { oci } from '../errors.js';
import { validateRepositoryName } from '../names.js';
import { blobRoutes } from '../routes/blobs.js';
import type { Handler, HandlerContext } from '../routes/context.js';
import { tagsRoutes } from '../routes/listings.js';
import { reference, referrersRoutes, sendManifest } from '../routes/manifests.js';
import type { ApiPath } from '../routes/path.js';
import type { MirrorTarget } from './routing.js';

type Named = Extract<ApiPath, { name: string }>;
type ManifestPath = Extract<ApiPath, { kind: 'manifest' }>;
type BlobPath = Extract<ApiPath, { kind: 'blob' }>;

/**
 * The handler for a request to a mirrored repository: pulls (manifests, blobs) go through
 * the cache; tag and referrer listings show what is cached; anything that would write
 * answers 405, since the content belongs to the upstream. Throws before authorization so
 * a push learns at once why it cannot succeed.
 */
export function mirrorHandler(path: Named, method: string, target: MirrorTarget): Handler<Named> {
  validateRepositoryName(target.cache);
  const read = method === 'GET' || method === 'HEAD';
  if (read && path.kind === 'manifest') return (ctx) => fetchManifest(ctx as HandlerContext<ManifestPath>, target);
  if (read && path.kind === 'blob') return (ctx) => fetchBlob(ctx as HandlerContext<BlobPath>, target);
  if (method === 'GET' && path.kind === 'tags') return (ctx) => tagsRoutes.GET({ ...ctx, path: { ...path, name: target.cache } });
  if (method === 'GET' && path.kind === 'referrers') {
    return (ctx) => referrersRoutes.GET({ ...ctx, path: { ...path, name: target.cache } });
  }
  throw oci(
    'UNSUPPORTED',
    `repository "${path.name}" is a read-only mirror of upstream "${target.upstream}" (${target.remote}); push to a local repository instead`,
    { upstream: target.upstream, repository: target.remote },
    { headers: { Allow: path.kind === 'manifest' || path.kind === 'blob' ? 'GET, HEAD' : 'GET' } },
  );
}

async function fetchManifest({ request, reply, path, services }: HandlerContext<ManifestPath>, target: MirrorTarget) {
  const manifest = await services.proxy!.manifest(target, reference(path, false), request.log);
  return sendManifest(request, reply, manifest);
}

async function fetchBlob(ctx: HandlerContext<BlobPath>, target: MirrorTarget) {
  const { request, reply, path, services } = ctx;
  const digest = parseDigest(path.digest);
  const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
  const blob = await services.proxy!.blob(target, digest, method, request.log);
  if (blob.kind === 'cached') return blobRoutes[method]({ ...ctx, path: { ...path, name: target.cache } });
  // Not cached yet: the whole blob (a Range is answered once it is cached).
  reply.headers({ 'Docker-Content-Digest': digest.value, 'Content-Type': 'application/octet-stream' });
  if (blob.size !== undefined) reply.header('Content-Length', blob.size);
  if (blob.kind === 'remote') return reply.send();
  return reply.send(blob.body);
}
