import type { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Grant } from '../auth/index.js';
import type { Config } from '../config.js';
import type { BlobService } from '../blobstore/service.js';
import type { UploadSessions } from '../blobstore/uploads.js';
import type { ManifestService } from '../manifests/service.js';
import type { MirrorRouting } from '../proxy/routing.js';
import type { PullThrough } from '../proxy/service.js';
import type { Query } from './query.js';

/** Every answer says which API it speaks. */
export const API_VERSION_HEADER = 'Docker-Distribution-API-Version';
export const API_VERSION = 'registry/2.0';

/** What the access log says of each request, whether the routes or the hot path answered it. */
export interface AccessEntry {
  method: string;
  url: string;
  /** The client's address: the socket's, or behind `http.trustedProxies` the one they forwarded. */
  remoteAddress: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

/** Writes the access-log line; `reqId` for a logger that does not carry it already. */
export function logAccess(log: FastifyBaseLogger, entry: AccessEntry, reqId?: string): void {
  log.info(reqId === undefined ? entry : { reqId, ...entry }, 'request');
}

/** The services routes call; routes never reach the store or index past these. */
export interface Services {
  config: Config;
  blobs: BlobService;
  uploads: UploadSessions;
  manifests: ManifestService;
  /** Which names are local and which mirrored (and `?ns=` checked), whether or not upstreams are configured. */
  routing: MirrorRouting;
  /** The pull-through cache, when upstreams are configured. */
  proxy?: PullThrough;
}

export type { Query } from './query.js';

export interface HandlerContext<P> {
  request: FastifyRequest;
  reply: FastifyReply;
  path: P;
  query: Query;
  services: Services;
  /** What the caller may do beyond this request's own access (catalog filtering, mount sources). */
  grant: Grant;
}

export type Handler<P> = (ctx: HandlerContext<P>) => Promise<unknown> | unknown;

/** The request body as a stream (uploads stream unbuffered), or undefined when empty. */
export function bodyStream(request: FastifyRequest): Readable | undefined {
  return (request.body as Readable | undefined) ?? undefined;
}
