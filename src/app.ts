import type { IncomingMessage, RequestListener, Server } from 'node:http';
import { join } from 'node:path';
import proxyAddr from '@fastify/proxy-addr';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { createAuth, type Auth } from './auth/index.js';
import { BlobFiles } from './blobstore/files.js';
import { BlobService } from './blobstore/service.js';
import { UploadSessions } from './blobstore/uploads.js';
import { splitAddress, type Config } from './config.js';
import { MetadataIndex } from './db/index.js';
import { oci } from './errors.js';
import { ImageFacts } from './manifests/images.js';
import { ManifestService } from './manifests/service.js';
import { LayerDigests } from './blobstore/layers.js';
import { MirrorRouting } from './proxy/routing.js';
import { errorHandler } from './routes/errors.js';
import { API_VERSION, API_VERSION_HEADER, logAccess } from './routes/context.js';
import { hotReads } from './routes/hot-reads.js';
import { registryRoutes } from './routes/index.js';
import { tokenRoutes } from './routes/token.js';
import { adminRoutes } from './routes/admin.js';
import { browseRoutes } from './routes/browse.js';
import { BrowseService, type LastGc } from './browse/service.js';
import { BrowseQueries } from './db/browse.js';
import { UsageQueries } from './gc/usage.js';
import { sessionRoutes } from './routes/session.js';
import { uiBuilt, uiRoutes, WEB_ROOT, withoutBrowserChallenge } from './ui/routes.js';
import { Lifecycle } from './gc/service.js';
import { prepareDataDirectory } from './ops/data-dir.js';
import { HealthChecks } from './ops/health.js';
import { Maintenance } from './ops/maintenance.js';
import { connectionLimit, openFilesLimit } from './ops/connections.js';
import { Metrics } from './ops/metrics.js';
import { Notifier } from './ops/webhooks.js';
import { InstanceLock } from './ops/instance-lock.js';
import { serverOptions } from './tls/server.js';
import { Actors, installOperations } from './routes/ops.js';

/** What a test may change about a registry beyond its configuration. */
export interface AppOptions {
  /**
   * The time ages are judged by: the storage lifecycle's (grace period, retention,
   * untagged manifests), upload sessions' idle timeout (which also stamps sessions) and
   * the pull-through cache's (tag TTL, upstream tokens and back-off). Tests set it
   * instead of waiting; blob files' and other rows' times stay the real ones.
   */
  clock?: () => number;
}

/**
 * Builds the registry: storage, index, services and routes. Never listens; the
 * caller (server.ts, tests) decides where. Closing the app closes the index.
 */
export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  // TLS files and the data directory are checked before anything is opened.
  const tls = await serverOptions(config.http);
  await prepareDataDirectory(config.storage.root);
  // Before anything on the directory changes: a second server must not empty tmp/ under the first.
  const lock = InstanceLock.acquire(config.storage.root);
  let index: MetadataIndex;
  const files = new BlobFiles(config.storage.root, config.storage.fsync);
  try {
    await files.init();
    index = new MetadataIndex(join(config.storage.root, 'index.db'), {
      durable: config.storage.fsync,
      cacheBytes: config.storage.cacheBytes,
    });
  } catch (err) {
    lock.release();
    throw err;
  }
  const layers = new LayerDigests(files, index, config.verify.layers !== 'off');
  const blobs = new BlobService(files, index, layers);
  const uploads = new UploadSessions(files, index, blobs, config.uploads.idleTimeout, options.clock);
  const images = new ImageFacts(index, blobs, layers, config.verify.layers, (source, result) => metrics.verification(source, result));
  const manifests = new ManifestService(index, images);
  // The pull-through cache is loaded only when upstreams are configured.
  const proxy =
    config.proxy.upstreams.length > 0
      ? new (await import('./proxy/service.js')).PullThrough(config, index, blobs, files, images, options.clock)
      : undefined;

  // X-Forwarded-For, -Proto and -Host count only from the configured proxies: the throttle,
  // logs, webhooks and token realms then see the client (the rightmost untrusted hop).
  const trust = config.http.trustedProxies.length > 0 ? proxyAddr.compile([...config.http.trustedProxies]) : undefined;
  const clientAddress = (req: IncomingMessage) => (trust ? proxyAddr(req, trust) : (req.socket.remoteAddress ?? ''));
  // Request ids in Fastify's own format, from one sequence that the hot reads share.
  let lastRequestId = 0;
  const nextRequestId = () => `req-${(lastRequestId = (lastRequestId + 1) & 0x7fffffff).toString(36)}`;
  // With TLS the server is an HTTP/2 one (answering HTTP/1.1 too); routes use only what both share.
  const app = Fastify({
    genReqId: nextRequestId,
    trustProxy: trust ?? false,
    ...tls,
    logger: { level: config.log.level, redact: ['req.headers.authorization'] },
    // One access-log line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    // Uploads of many GiB may take a long time; Fastify must not cut them off.
    requestTimeout: 0,
    bodyLimit: config.manifests.maxBytes,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  // Connections alone must never take every file descriptor: beyond the limit, new ones
  // are closed as soon as they are accepted.
  const maxConnections = connectionLimit(config.limits.maxConnections, openFilesLimit());
  if (maxConnections > 0) app.server.maxConnections = maxConnections;
  let droppedAt = -Infinity;
  app.server.on('drop', () => {
    if (performance.now() - droppedAt < 10_000) return;
    droppedAt = performance.now();
    app.log.warn({ maxConnections }, 'connection limit reached: new connections are closed at once (limits.maxConnections)');
  });

  let auth: Auth;
  try {
    auth = await createAuth(config, index, app.log);
    await uploads.recover();
    const purged = await uploads.purgeIdle();
    if (purged > 0) app.log.info({ purged }, 'purged idle upload sessions');
  } catch (err) {
    index.close();
    lock.release();
    throw err;
  }
  const purgeTimer = setInterval(() => {
    uploads.purgeIdle().then(
      (purged) => purged > 0 && app.log.info({ purged }, 'purged idle upload sessions'),
      (err: unknown) => app.log.error({ err }, 'purging upload sessions failed'),
    );
  }, config.uploads.purgeInterval);
  purgeTimer.unref();
  const lifecycle = new Lifecycle(files, index, config, options.clock);
  const maintenance = new Maintenance(config.storage.readOnly);
  const metrics = new Metrics(index, maintenance);
  layers.onComputed((when, contents) => metrics.layerDigest(when, contents.format));
  lifecycle.onCollected((report) => metrics.collected(report));
  let lastGc: LastGc | null = null;
  lifecycle.onCollected((report) => {
    if (!report) return;
    const { startedAt: at, reclaimedBytes, blobs, manifests: removed, durationMs } = report;
    lastGc = { at, reclaimedBytes, blobsRemoved: blobs.count, manifestsRemoved: removed.length, durationMs };
  });
  lifecycle.schedule(config.gc.interval, app.log, () => maintenance.readOnly);
  app.decorate('operations', { metrics, maintenance });
  const notifier = new Notifier(index, config.notifications, app.log, (endpoint, ok) => metrics.delivery(endpoint, ok), {
    scheme: config.http.tlsCert === '' ? 'http' : 'https',
    port: splitAddress(config.http.addr).port,
  });
  notifier.start();

  app.addHook('onRequest', (_request, reply, done) => {
    reply.header(API_VERSION_HEADER, API_VERSION);
    done();
  });
  if (config.ui.enabled && config.auth.mode === 'basic') app.addHook('onSend', withoutBrowserChallenge);
  // The access log costs a little on every request: only hook it in when it is written.
  const accessLog = ['info', 'debug', 'trace'].includes(config.log.level);
  if (accessLog) {
    app.addHook('onResponse', async (request, reply) => {
      logAccess(request.log, {
        method: request.method,
        url: request.url,
        remoteAddress: request.ip,
        status: reply.statusCode,
        bytesIn: Number(request.headers['content-length'] ?? 0),
        bytesOut: Number(reply.getHeader('content-length') ?? 0),
        durationMs: Math.round(reply.elapsedTime),
      });
    });
  }
  // Closing waits for busy connections, but closes idle keep-alive ones only once, at
  // the start; a connection that finishes its request later would hold the close until
  // its keep-alive timeout. Keep closing the idle ones until the server is down.
  let reaper: NodeJS.Timeout | undefined;
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    reaper = setInterval(() => app.server.closeIdleConnections?.(), 50);
  });
  // Manifests stored before the image index existed are indexed in the background.
  let closed = false;
  const backfill = images.backfill(() => closed).then(
    (indexed) => indexed > 0 && app.log.info({ indexed }, 'indexed the images stored before'),
    (err: unknown) => app.log.error({ err }, 'indexing stored images failed'),
  );
  app.addHook('onClose', async () => {
    closed = true;
    await backfill;
    clearInterval(reaper);
    clearInterval(purgeTimer);
    await lifecycle.close();
    await notifier.close();
    await proxy?.close();
    await layers.close();
    await files.close();
    index.close();
    lock.release();
  });

  const handleError = errorHandler(config.limits);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    const error = request.url.startsWith('/v2')
      ? oci('UNSUPPORTED', `${request.method} is not supported`)
      : oci('UNSUPPORTED', 'not found', undefined, { status: 404 });
    return handleError(error, request, reply);
  });

  const health = new HealthChecks(index, config.storage.root, config.health.minFreeBytes);
  const actors = new Actors();
  const load = await installOperations(app, { config, metrics, maintenance, health, uploads, notifier, actors });
  const { tokenServer } = auth;
  const authorizer = actors.wrap(auth.authorizer);
  if (tokenServer) await app.register(tokenRoutes, { tokenServer });
  const services = { config, blobs, uploads, manifests, routing: new MirrorRouting(config.proxy, config.http.hostnames), proxy };
  await app.register(registryRoutes, { services, authorizer });
  // Cached pulls answered ahead of Fastify, where no other part must see them (see hot-reads.ts).
  if (config.http.tlsCert === '' && config.auth.mode === 'none' && !proxy && !notifier.enabled) {
    const busy = () => closing || load.overloaded();
    const hot = hotReads(services, metrics, busy, accessLog ? { log: app.log, nextId: nextRequestId, clientAddress } : undefined);
    const server = app.server as Server;
    // Fastify's handler is the server's request listener; hot reads go first.
    const [fastify] = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req, res) => {
      if (!hot(req, res)) fastify!(req, res);
    });
  }
  const browse = new BrowseService(new BrowseQueries(index.database), new UsageQueries(index), {
    lastGc: () => lastGc,
    mirror: () => proxy?.stats() ?? null,
  });
  await app.register(browseRoutes, { browse, authorizer, config });
  await app.register(adminRoutes, { prefix: '/_berth/admin', lifecycle, authorizer, config, maintenance });
  if (config.ui.enabled) {
    await app.register(sessionRoutes, { prefix: '/_berth/api/session', config, authorizer, signIn: auth.signIn });
    if (uiBuilt(WEB_ROOT)) await app.register(uiRoutes, { root: WEB_ROOT });
    else app.log.warn(`the web UI is not built (${WEB_ROOT} is missing): run npm run build`);
  }
  return app;
}
