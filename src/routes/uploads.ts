import { Readable } from 'node:stream';
import { parseDigest } from '../digest.js';
import { oci } from '../errors.js';
import { validateRepositoryName } from '../names.js';
import { rangeHeader, type ChunkRange } from '../blobstore/uploads.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiPath } from './path.js';
import { bodyStream, type Handler } from './context.js';

type UploadsPath = Extract<ApiPath, { kind: 'uploads' }>;
type UploadPath = Extract<ApiPath, { kind: 'upload' }>;

function sessionReply(reply: FastifyReply, name: string, id: string, offset: number, status: number) {
  return reply
    .code(status)
    .headers({
      Location: `/v2/${name}/blobs/uploads/${id}`,
      'Docker-Upload-UUID': id,
      Range: rangeHeader(offset),
      'Content-Length': 0,
    })
    .send();
}

function blobCreated(reply: FastifyReply, name: string, digest: string) {
  return reply
    .code(201)
    .headers({ Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 })
    .send();
}

/** `Content-Range: start-end` (Docker's form, also accepted with a `bytes ` unit), checked against Content-Length. */
function chunkRange(request: FastifyRequest): ChunkRange | undefined {
  const header = request.headers['content-range'];
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match || Number(match[2]) < Number(match[1])) {
    throw oci('BLOB_UPLOAD_INVALID', `invalid Content-Range "${header}"`, undefined, { status: 416 });
  }
  const range = { start: Number(match[1]), end: Number(match[2]) };
  const length = request.headers['content-length'];
  if (length !== undefined && Number(length) !== range.end - range.start + 1) {
    throw oci('SIZE_INVALID', `Content-Range ${header} does not match Content-Length ${length}`);
  }
  return range;
}

const startUpload: Handler<UploadsPath> = async ({ request, reply, path, query, services, grant }) => {
  const { name } = path;
  if (query.mount !== undefined) {
    const digest = parseDigest(query.mount);
    const from = query.from === undefined ? undefined : validateRepositoryName(query.from);
    // Only from repositories the caller may pull; otherwise the client simply uploads.
    const readable = grant.unrestricted ? undefined : (repository: string) => grant.mayPull(repository);
    if ((from === undefined || grant.mayPull(from)) && (await services.blobs.mount(name, digest, from, readable)) !== undefined) {
      return blobCreated(reply, name, digest.value);
    }
  } else if (query.digest !== undefined) {
    const digest = parseDigest(query.digest);
    // An empty body is the zero-length blob; its digest is checked like any other.
    await services.blobs.put(name, digest, bodyStream(request) ?? Readable.from([]));
    return blobCreated(reply, name, digest.value);
  }
  const id = await services.uploads.create(name);
  return sessionReply(reply, name, id, 0, 202);
};

const uploadStatus: Handler<UploadPath> = async ({ reply, path, services }) => {
  const offset = await services.uploads.offset(path.name, path.id);
  return sessionReply(reply, path.name, path.id, offset, 204);
};

const patchUpload: Handler<UploadPath> = async ({ request, reply, path, services }) => {
  const range = chunkRange(request);
  const body = bodyStream(request);
  const offset = body
    ? await services.uploads.append(path.name, path.id, body, range)
    : await services.uploads.offset(path.name, path.id);
  return sessionReply(reply, path.name, path.id, offset, 202);
};

const finishUpload: Handler<UploadPath> = async ({ request, reply, path, query, services }) => {
  const digest = parseDigest(query.digest);
  const range = chunkRange(request);
  await services.uploads.complete(path.name, path.id, digest, bodyStream(request), range);
  return blobCreated(reply, path.name, digest.value);
};

const cancelUpload: Handler<UploadPath> = async ({ reply, path, services }) => {
  await services.uploads.cancel(path.name, path.id);
  return reply.code(204).send();
};

export const uploadsRoutes = { POST: startUpload };
export const uploadRoutes = { GET: uploadStatus, PATCH: patchUpload, PUT: finishUpload, DELETE: cancelUpload };
