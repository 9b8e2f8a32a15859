import underPressure from '@fastify/under-pressure';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authorizer, Grant } from '../auth/index.js';
import type { UploadSessions } from '../blobstore/uploads.js';
import { ManifestService } from '../manifests/service.js';
import type { Config } from '../config.js';
import { oci } from '../errors.js';
import type { HealthChecks } from '../ops/health.js';
import type { Maintenance } from '../ops/maintenance.js';
import type { Metrics } from '../ops/metrics.js';
import type { Notifier } from '../ops/webhooks.js';
import { parseApiPath } from './path.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** What server.ts needs to run the app: the metrics (for a separate listener) and read-only mode (SIGUSR2). */
    operations: { metrics: Metrics; maintenance: Maintenance };
  }
}

export interface Operations {
  config: Config;
  metrics: Metrics;
  health: HealthChecks;
  maintenance: Maintenance;
  uploads: UploadSessions;
  notifier: Notifier;
  actors: Actors;
}

/**
 * Remembers who each request was authorized as, for the `actor` of webhook events: wraps
 * the authorizer the routes use.
 */
export class Actors {
  private readonly grants = new WeakMap<object, Grant>();

  wrap(authorizer: Authorizer): Authorizer {
    return {
      authorize: async (caller, access) => {
        const grant = await authorizer.authorize(caller, access);
        this.grants.set(caller, grant);
        return grant;
      },
    };
  }

  of(request: FastifyRequest): string {
    const identity = this.grants.get(request)?.identity;
    return identity?.kind === 'user' ? identity.name : 'anonymous';
  }
}

/** The webhook event a finished manifest request makes, if any: push (201 PUT), pull (200 GET), delete (202 DELETE). */
function publishEvent(ops: Operations, request: FastifyRequest, reply: FastifyReply, pathname: string, bytesIn: number): void {
  const action =
    request.method === 'PUT' && reply.statusCode === 201
      ? 'push'
      : request.method === 'GET' && reply.statusCode === 200
        ? 'pull'
        : request.method === 'DELETE' && reply.statusCode === 202
          ? 'delete'
          : undefined;
  if (!action) return;
  const path = parseApiPath(pathname);
  if (path.kind !== 'manifest') return;
  const reference = ManifestService.parseReference(path.reference);
  const byTag = reference !== undefined && 'tag' in reference;
  const header = (name: string) => {
    const value = reply.getHeader(name);
    return value === undefined ? undefined : String(value);
  };
  const digest = byTag ? header('docker-content-digest') : path.reference;
  const size = action === 'push' ? bytesIn : action === 'pull' ? Number(header('content-length')) : undefined;
  const mediaType = action === 'push' ? request.headers['content-type'] : action === 'pull' ? header('content-type') : undefined;
  ops.notifier.publish({
    action,
    repository: path.name,
    ...(byTag && { tag: path.reference }),
    ...(digest !== undefined && { digest }),
    ...(mediaType !== undefined && { mediaType }),
    ...(size !== undefined && { size }),
    actor: { name: ops.actors.of(request) },
    request: { addr: request.ip, method: request.method, ...(request.headers['user-agent'] && { userAgent: request.headers['user-agent'] }) },
  });
}

/** Paths answered even when the registry is saturated or read-only. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The route class a request is counted under. */
function routeClass(pathname: string): string {
  if (pathname === '/v2' || pathname.startsWith('/v2/')) return parseApiPath(pathname).kind;
  if (pathname.startsWith('/_berth/admin')) return 'admin';
  if (pathname.startsWith('/_berth/api/')) return 'api';
  if (pathname === '/v1/search') return 'search';
  if (pathname === '/token') return 'token';
  if (PROBES.has(pathname)) return pathname.slice(1);
  return 'other';
}

/** Does this request stream blob data into the store? */
function isUpload(route: string, request: FastifyRequest, query: string): boolean {
  if (route === 'upload') return request.method === 'PATCH' || request.method === 'PUT';
  return route === 'uploads' && request.method === 'POST' && /(^|&)digest=/.test(query);
}

function tooBig(max: number) {
  return oci('SIZE_INVALID', `blobs are limited to ${max} bytes (limits.maxBlobBytes)`, { maxBlobBytes: max }, { status: 413 });
}

/**
 * Passes at most `allowed` bytes through, then fails with 413. Lazy: nothing is read
 * until the handler consumes the body, so the error reaches the handler's pipeline.
 */
function limited(body: Readable, allowed: number, max: number): Readable {
  async function* take() {
    let seen = 0;
    for await (const chunk of body) {
      seen += (chunk as Buffer).length;
      if (seen > allowed) throw tooBig(max);
      yield chunk as Buffer;
    }
  }
  return Readable.from(take(), { objectMode: false });
}

/** The exposition handler, for the main listener or a separate metrics listener. */
export function metricsHandler(metrics: Metrics) {
  return async (_request: FastifyRequest, reply: FastifyReply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  };
}

/**
 * What an operator runs Berth with, on the root instance (its hooks see every request):
 * `/healthz`, `/readyz` and `/metrics`; request metrics; read-only mode; the limit on
 * concurrent uploads; 503 with Retry-After while the event loop is saturated.
 */
export async function installOperations(app: FastifyInstance, ops: Operations): Promise<void> {
  const { config, metrics, maintenance } = ops;
  const uploadRequests = new WeakSet<FastifyRequest>();
  let uploading = 0;

  if (config.limits.maxEventLoopDelay > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.limits.maxEventLoopDelay,
      retryAfter: 10,
      pressureHandler: async (request) => {
        if (PROBES.has(request.url.split('?', 1)[0]!)) return;
        throw oci('UNAVAILABLE', 'the registry is overloaded; retry later', undefined, { headers: { 'Retry-After': '10' } });
      },
    });
  }

  const finished = (request: FastifyRequest, reply: FastifyReply, route: string, bytesReadAtStart: number) => {
    // Chunked bodies (docker's layer PATCH) declare no length: count what the connection read.
    const declared = request.headers['content-length'];
    const socket = request.raw.socket;
    const bytesIn =
      declared !== undefined || request.raw.httpVersionMajor !== 1 || !socket
        ? Number(declared ?? 0)
        : socket.bytesRead - bytesReadAtStart;
    // Events only for answers the client received in full.
    if (route === 'manifest' && ops.notifier.enabled && reply.raw.writableFinished) {
      publishEvent(ops, request, reply, request.url.split('?', 1)[0]!, bytesIn);
    }
    metrics.request({
      route,
      method: request.method,
      status: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
      bytesIn,
      bytesOut: request.method === 'HEAD' || reply.statusCode === 304 ? 0 : Number(reply.getHeader('content-length') ?? 0),
    });
  };

  // A callback hook, not an async one: it runs on every request, and a promise each costs.
  const admit = (request: FastifyRequest, reply: FastifyReply): void => {
    const [pathname, query = ''] = request.url.split('?', 2) as [string, string?];
    const route = routeClass(pathname);
    const upload = isUpload(route, request, query);
    const bytesReadAtStart = request.raw.socket?.bytesRead ?? 0;
    // Counted when the response is done or its connection went away (Fastify runs onResponse
    // hooks only for responses that finished, so an aborted download would go uncounted).
    reply.raw.once('close', () => {
      try {
        finished(request, reply, route, bytesReadAtStart);
      } catch (err) {
        request.log.error({ err }, 'recording the request failed');
      }
    });
    const write = pathname.startsWith('/v2') || (route === 'admin' && pathname !== '/_berth/admin/read-only');
    if (maintenance.readOnly && write && !READS.has(request.method)) {
      throw oci('UNSUPPORTED', 'the registry is in read-only mode for maintenance; pulls keep working', { readOnly: true }, { status: 405 });
    }
    if (upload) {
      const max = config.limits.maxConcurrentUploads;
      if (max > 0 && uploading >= max) {
        throw oci('TOOMANYREQUESTS', `${max} uploads are in progress; retry later`, { maxConcurrentUploads: max }, {
          headers: { 'Retry-After': '5' },
        });
      }
      uploading++;
      uploadRequests.add(request);
      metrics.uploadStarted();
      reply.raw.once('close', () => {
        uploading--;
        metrics.uploadEnded();
      });
    }
  };
  app.addHook('onRequest', (request, reply, done) => {
    try {
      admit(request, reply);
      done();
    } catch (err) {
      done(err as Error);
    }
  });

  const maxBlob = config.limits.maxBlobBytes;
  if (maxBlob > 0) {
    // A session's limit counts the bytes it already has; an unknown session is the handler's to refuse.
    app.addHook('preHandler', async (request) => {
      if (!uploadRequests.has(request)) return;
      const path = parseApiPath(request.url.split('?', 1)[0]!);
      const offset = path.kind === 'upload' ? await ops.uploads.offset(path.name, path.id).catch(() => 0) : 0;
      const allowed = maxBlob - offset;
      const declared = request.headers['content-length'];
      if (declared !== undefined && Number(declared) > allowed) throw tooBig(maxBlob);
      const body = request.body as Readable | undefined;
      if (body) request.body = limited(body, allowed, maxBlob);
    });
  }

  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const readiness = await ops.health.readiness();
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });
  if (config.metrics.enabled && config.metrics.addr === '') app.get('/metrics', metricsHandler(metrics));
}
