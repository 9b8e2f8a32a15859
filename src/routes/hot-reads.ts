import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { tryParseDigest } from '../digest.js';
import { ManifestService } from '../manifests/service.js';
import { isValidRepositoryName } from '../names.js';
import type { Metrics } from '../ops/metrics.js';
import { blobHeaders } from './blobs.js';
import { API_VERSION, API_VERSION_HEADER, logAccess, type Services } from './context.js';
import { manifestHeaders } from './manifests.js';
import { parseApiPath } from './path.js';

/**
 * The requests a busy registry answers most, manifest GET/HEAD and blob HEAD, served
 * ahead of Fastify when the answer is a 200 from the cache: without Fastify's request
 * and reply objects and hooks they cost about a third less. The caller installs this
 * only where nothing else must see such a request (no authentication, no pull-through
 * cache, no webhooks) and `busy` turns it off while the server closes or is overloaded.
 * With `accessLog`, each answer gets the access line the routes would write (the client's
 * address found as Fastify finds `request.ip`). Everything
 * else (a miss, a query string, a range, a conditional request, every error) goes on to
 * Fastify, and the headers come from the same functions the routes use, so both paths
 * give the same answer.
 */
export function hotReads(
  services: Services,
  metrics: Metrics,
  busy: () => boolean,
  accessLog?: { log: FastifyBaseLogger; nextId: () => string; clientAddress: (req: IncomingMessage) => string },
) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '';
    const { headers } = req;
    if (url.includes('?') || headers.range !== undefined || headers['if-none-match'] !== undefined || busy()) return false;
    const started = performance.now();
    const path = parseApiPath(url);
    if (path.kind !== 'manifest' && path.kind !== 'blob') return false;
    if (!isValidRepositoryName(path.name)) return false;

    let reply: Record<string, string | number>;
    let body: Buffer | undefined;
    if (path.kind === 'manifest') {
      const reference = ManifestService.parseReference(path.reference);
      const manifest = reference && services.manifests.find(path.name, reference);
      if (!manifest) return false;
      reply = manifestHeaders(manifest);
      if (method === 'GET') body = manifest.content;
    } else {
      // A blob GET streams from disk: that is Fastify's, as is anything but HEAD.
      const digest = method === 'HEAD' ? tryParseDigest(path.digest) : undefined;
      const size = digest && services.blobs.size(path.name, digest);
      if (size === undefined) return false;
      reply = blobHeaders(digest!);
      reply['Content-Length'] = size;
    }
    reply[API_VERSION_HEADER] = API_VERSION;
    res.writeHead(200, reply);
    res.end(body);
    const ms = performance.now() - started;
    const bytesIn = Number(headers['content-length'] ?? 0);
    metrics.request({ route: path.kind, method, status: 200, seconds: ms / 1000, bytesIn, bytesOut: body?.length ?? 0 });
    if (accessLog) {
      const entry = {
        method,
        url,
        remoteAddress: accessLog.clientAddress(req),
        status: 200,
        bytesIn,
        bytesOut: Number(reply['Content-Length']),
        durationMs: Math.round(ms),
      };
      logAccess(accessLog.log, entry, accessLog.nextId());
    }
    return true;
  };
}
