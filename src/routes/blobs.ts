import { parseDigest, type Digest } from '../digest.js';
import { oci } from '../errors.js';
import type { ApiPath } from './path.js';
import type { Handler } from './context.js';
import { sendFile } from './send-file.js';

type BlobPath = Extract<ApiPath, { kind: 'blob' }>;

/**
 * Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Other forms, and a range
 * whose last byte comes before its first (invalid, RFC 9110 14.1.1), are ignored: the
 * whole blob is sent. A valid range that starts past the end is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] !== '' && match[2] !== '' && Number(match[2]) < Number(match[1])) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
    if (start >= size) return 'unsatisfiable';
  }
  return { start, end };
}

/** The headers every GET/HEAD of a blob carries, for this route and the hot path alike. */
export function blobHeaders(digest: Digest): Record<string, string> {
  return {
    'Docker-Content-Digest': digest.value,
    ETag: `"${digest.value}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
    'Content-Type': 'application/octet-stream',
  };
}

const fetchBlob: Handler<BlobPath> = async ({ request, reply, path, services }) => {
  const digest = parseDigest(path.digest);
  const size = services.blobs.stat(path.name, digest);
  reply.headers(blobHeaders(digest));
  if (request.headers['if-none-match'] === `"${digest.value}"`) return reply.code(304).send();

  const range = parseRange(request.headers.range, size);
  if (range === 'unsatisfiable') {
    throw oci('SIZE_INVALID', 'requested range not satisfiable', { size, range: request.headers.range }, {
      status: 416,
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
  if (range) reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  const length = range ? range.end - range.start + 1 : size;
  reply.header('Content-Length', length);
  if (request.method === 'HEAD' || length === 0) return reply.send();
  return sendFile(reply, await services.blobs.open(digest), range?.start ?? 0, length);
};

const deleteBlob: Handler<BlobPath> = async ({ reply, path, services }) => {
  if (!services.config.storage.delete) throw oci('UNSUPPORTED', 'deletes are disabled (storage.delete)');
  await services.blobs.unlink(path.name, parseDigest(path.digest));
  return reply.code(202).header('Content-Length', 0).send();
};

export const blobRoutes = { GET: fetchBlob, HEAD: fetchBlob, DELETE: deleteBlob };
