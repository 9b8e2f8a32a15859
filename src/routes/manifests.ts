import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ManifestRecord } from '../db/index.js';
import type { Readable } from 'node:stream';
import { parseDigest } from '../digest.js';
import { oci } from '../errors.js';
import { ManifestService, REFERRERS_MEDIA_TYPE, type Reference } from '../manifests/service.js';
import type { ApiPath } from './path.js';
import { bodyStream, type Handler } from './context.js';

type ManifestPath = Extract<ApiPath, { kind: 'manifest' }>;
type ReferrersPath = Extract<ApiPath, { kind: 'referrers' }>;

export function reference(path: ManifestPath, forWrite: boolean): Reference {
  const ref = ManifestService.parseReference(path.reference);
  if (ref) return ref;
  if (path.reference.includes(':')) parseDigest(path.reference);
  throw forWrite
    ? oci('MANIFEST_INVALID', `invalid tag "${path.reference}"`, { reference: path.reference })
    : oci('MANIFEST_UNKNOWN', `manifest ${path.reference} is unknown`, { reference: path.reference });
}

/** Reads a manifest body, refusing more than `limit` bytes with 413 as soon as it is exceeded. */
async function readLimited(body: Readable | undefined, declared: string | undefined, limit: number): Promise<Buffer> {
  const tooBig = () => oci('SIZE_INVALID', `manifest exceeds the ${limit} byte limit`, { limit }, { status: 413 });
  if (declared !== undefined && Number(declared) > limit) throw tooBig();
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooBig();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** The headers of a manifest's GET/HEAD reply, for this route and the hot path alike. */
export function manifestHeaders(manifest: ManifestRecord): Record<string, string | number> {
  return {
    'Content-Type': manifest.mediaType,
    'Docker-Content-Digest': manifest.digest,
    ETag: `"${manifest.digest}"`,
    'Content-Length': manifest.size,
    ...(manifest.subject && { 'OCI-Subject': manifest.subject }),
  };
}

/** A manifest's GET/HEAD reply: the stored bytes exactly, with their media type and digest. */
export function sendManifest(request: FastifyRequest, reply: FastifyReply, manifest: ManifestRecord) {
  reply.headers(manifestHeaders(manifest));
  return reply.send(request.method === 'HEAD' ? undefined : manifest.content);
}

const fetchManifest: Handler<ManifestPath> = ({ request, reply, path, services }) =>
  sendManifest(request, reply, services.manifests.get(path.name, reference(path, false)));

const putManifest: Handler<ManifestPath> = async ({ request, reply, path, services }) => {
  const ref = reference(path, true);
  const body = await readLimited(bodyStream(request), request.headers['content-length'], services.config.manifests.maxBytes);
  const { digest, subject } = await services.manifests.put(path.name, ref, body, request.headers['content-type'], request.log);
  reply.code(201).headers({
    Location: `/v2/${path.name}/manifests/${digest}`,
    'Docker-Content-Digest': digest,
    'Content-Length': 0,
  });
  if (subject) reply.header('OCI-Subject', subject);
  return reply.send();
};

const deleteManifest: Handler<ManifestPath> = async ({ reply, path, services }) => {
  if (!services.config.storage.delete) throw oci('UNSUPPORTED', 'deletes are disabled (storage.delete)');
  await services.manifests.delete(path.name, reference(path, false));
  return reply.code(202).header('Content-Length', 0).send();
};

const listReferrers: Handler<ReferrersPath> = ({ reply, path, query, services }) => {
  const subject = parseDigest(path.digest);
  const artifactType = query.artifactType || undefined;
  const manifests = services.manifests.referrers(path.name, subject, artifactType);
  if (artifactType !== undefined) reply.header('OCI-Filters-Applied', 'artifactType');
  return reply
    .type(REFERRERS_MEDIA_TYPE)
    // A Buffer keeps Fastify from appending `; charset=utf-8` to the media type.
    .send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: REFERRERS_MEDIA_TYPE, manifests })));
};

export const manifestRoutes = { GET: fetchManifest, HEAD: fetchManifest, PUT: putManifest, DELETE: deleteManifest };
export const referrersRoutes = { GET: listReferrers };
