import { constants as http2, type Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';

/**
 * How long a refused request's body is still read (and discarded) after the answer, at
 * most: long enough for a client to take the answer and stop sending.
 */
const LINGER_MS = 5000;

/** Whether body bytes of the request may still be on their way, unread. */
export function bodyPending(request: FastifyRequest): boolean {
  const raw = request.raw;
  if (raw.complete) return false;
  if (raw.httpVersionMajor >= 2) return !(raw as unknown as Http2ServerRequest).stream.endAfterHeaders;
  const { 'content-length': length, 'transfer-encoding': encoding } = raw.headers;
  return encoding !== undefined || (length !== undefined && length !== '0');
}

/**
 * Cuts the request off when its body sends nothing for `idleMs` (a client that stopped,
 * or one holding a connection open on purpose). A slow upload that keeps sending is never
 * cut. The timer ends with the body.
 */
export function watchBody(request: FastifyRequest, idleMs: number, log: FastifyBaseLogger): void {
  if (idleMs <= 0 || !bodyPending(request)) return;
  const raw = request.raw;
  raw.setTimeout(idleMs, () => {
    log.warn({ idleMs }, 'request body sent nothing for limits.bodyIdleTimeout; cut off');
    // HTTP/1.1: the connection goes; HTTP/2: the request's stream is reset, the session stays.
    if (raw.httpVersionMajor >= 2) (raw as unknown as Http2ServerRequest).stream.close(http2.NGHTTP2_CANCEL);
    else raw.destroy();
  });
  raw.once('end', () => raw.setTimeout(0));
}

/**
 * After refusing a request whose body was not read (401, 413, 429…): the client is told
 * the connection closes (`Connection: close`), its answer is written, and what it still
 * sends is read and discarded for at most LINGER_MS (or `idleMs` if shorter) before the
 * connection is closed. Reading on as for keep-alive would let it send for as long as it
 * likes; closing at once would reset a connection the client is still writing to, and it
 * could lose the answer.
 */
export function closeAfterAnswer(request: FastifyRequest, reply: FastifyReply, idleMs: number): void {
  const raw = request.raw;
  // HTTP/2 needs nothing: once the answer ends its stream, nghttp2 resets the stream with
  // NO_ERROR itself, which tells the client to stop sending, and the session goes on.
  if (raw.httpVersionMajor >= 2) return;
  const linger = idleMs > 0 ? Math.min(LINGER_MS, idleMs) : LINGER_MS;
  const socket = raw.socket as (Socket & { destroySoon?: () => void }) | null;
  reply.header('Connection', 'close');
  // A request whose body failed mid-stream (the disk filled, say) may have let go of its socket already.
  if (socket === null) return;
  // Node ends a connection after a `Connection: close` answer with destroySoon(), which
  // destroys the socket as soon as the answer is written: half-close instead, and let the
  // timer below destroy it.
  socket.destroySoon = () => socket.end();
  reply.raw.once('finish', () => {
    raw.resume();
    setTimeout(() => socket.destroy(), linger).unref();
  });
}
