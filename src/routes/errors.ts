import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError, oci } from '../errors.js';
import { bodyPending, closeAfterAnswer } from './connections.js';

type ErrorHandler = (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => FastifyReply;

/**
 * The one place errors become responses. RegistryErrors carry their OCI code;
 * Fastify's own client errors are mapped to the nearest code; anything else is a
 * 500 whose internals stay in the log. A request refused before its body was read
 * loses its connection once answered (see `closeAfterAnswer`), so that nobody can keep
 * sending a body Berth will never use.
 */
export function errorHandler(options: { bodyIdleTimeout: number }): ErrorHandler {
  return (error, request, reply) => {
    if (bodyPending(request)) closeAfterAnswer(request, reply, options.bodyIdleTimeout);
    return render(error, request, reply);
  };
}

function render(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const registryError = error instanceof RegistryError ? error : (storageFull(error) ?? fromFastify(error as FastifyError));
  if (!registryError) {
    request.log.error({ err: error }, 'request failed');
    return reply
      .code(500)
      .type('application/json')
      .send({ errors: [{ code: 'UNKNOWN', message: 'internal server error', detail: { requestId: request.id } }] });
  }
  if (registryError.status >= 500) request.log.error({ err: error }, 'request failed');
  return reply
    .code(registryError.status)
    .headers(registryError.headers)
    .type('application/json')
    .send(JSON.stringify(registryError.toJSON()));
}

/** Out of space or quota, from the file system or from SQLite. */
const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/**
 * A write that found the disk full: the operation left nothing half-done (temporary
 * files are removed, transactions roll back, sessions keep their bytes), so the client
 * may retry once space is freed; the log has the details.
 */
function storageFull(error: Error): RegistryError | undefined {
  if (!FULL.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
  return oci('STORAGE_FULL', "the registry's storage is full; retry once space is freed (an upload session keeps the bytes it holds)");
}

/** The client went away mid-body: nothing was stored, and there is nobody to answer. */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED']);

function fromFastify(error: FastifyError): RegistryError | undefined {
  if (CLIENT_GONE.has(error.code)) return oci('BLOB_UPLOAD_INVALID', 'the request body ended early');
  const status = error.statusCode;
  if (status === undefined || status >= 500) return undefined;
  if (status === 413) return oci('SIZE_INVALID', error.message, undefined, { status });
  return oci('UNSUPPORTED', error.message, undefined, { status });
}
