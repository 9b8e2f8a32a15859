import { executionAsyncResource } from 'node:async_hooks';
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { metricsHandler } from './routes/ops.js';
import { readKeyPair } from './tls/server.js';
import { splitAddress, type Config } from './config.js';
import { errnoCode, SetupError } from './setup-error.js';

/** Starts the registry on the configured address and closes it cleanly on SIGTERM/SIGINT. */
export async function serve(config: Config): Promise<FastifyInstance> {
  keepTickShape();
  const app = await buildApp(config);
  const { host, port } = splitAddress(config.http.addr);
  let metricsServer: FastifyInstance | undefined;
  try {
    await listen(app, 'http.addr', config.http.addr);
    if (config.metrics.enabled && config.metrics.addr !== '') metricsServer = await listenMetrics(app, config.metrics.addr);
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address();
  app.log.info(
    {
      port: typeof address === 'object' && address ? address.port : port,
      storage: config.storage.root,
      ...(app.server.maxConnections > 0 && { maxConnections: app.server.maxConnections }),
      ...(metricsServer && { metricsPort: (metricsServer.server.address() as { port: number }).port }),
    },
    'berth is ready',
  );
  if (config.auth.mode === 'none' && !isLoopback(host)) {
    app.log.warn(
      { addr: config.http.addr },
      'auth.mode is none: anyone who can reach this address may push and delete (see README, "Authentication")',
    );
  }

  // With TLS, SIGHUP reloads the certificate and key: new connections get them, the open
  // ones (a download in progress) go on with the old. The HTTP/2 server has no
  // closeAllConnections, so the shutdown deadline destroys its sockets itself.
  const tlsSockets = new Set<Socket>();
  if (config.http.tlsCert !== '') {
    const server = app.server as unknown as TlsServer;
    server.on('secureConnection', (socket: Socket) => {
      tlsSockets.add(socket);
      socket.once('close', () => tlsSockets.delete(socket));
    });
    process.on('SIGHUP', () => {
      readKeyPair(config.http).then(
        (pair) => {
          server.setSecureContext(pair);
          app.log.info({ cert: config.http.tlsCert }, 'TLS certificate reloaded');
        },
        (err: unknown) => app.log.error({ err }, 'TLS certificate reload failed; keeping the current one'),
      );
    });
  }

  // SIGUSR2 toggles read-only mode (as PUT /_berth/admin/read-only does).
  const { maintenance } = app.operations;
  process.on('SIGUSR2', () => {
    maintenance.set(!maintenance.readOnly, 'SIGUSR2');
    app.log.warn({ ...maintenance.status() }, maintenance.readOnly ? 'read-only mode on' : 'read-only mode off');
  });

  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    // New connections are refused at once; requests in progress (uploads, downloads) get
    // up to limits.shutdownTimeout to finish, then their connections are cut. The index
    // closes after the last request is done.
    const deadline = config.limits.shutdownTimeout;
    app.log.info({ signal, deadlineMs: deadline }, 'shutting down');
    setTimeout(() => {
      app.log.warn({ deadlineMs: deadline }, 'shutdown deadline reached: closing the remaining connections');
      app.server.closeAllConnections?.();
      for (const socket of tlsSockets) socket.destroy();
    }, deadline).unref();
    Promise.all([app.close(), metricsServer?.close()]).then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  return app;
}

let heldTick: object | undefined;

/**
 * Keeps one of Node's `process.nextTick` queue entries alive for good. Every HTTP reply
 * queues a few; when none exists while the server idles, V8's memory reducer collects
 * their object shape, and from then on each new entry is built through V8's slow
 * runtime path: measured here, a cached pull cost a third more CPU (62 instead of
 * 46 µs) for as long as the process ran. One live entry keeps the shape, and the speed.
 */
function keepTickShape(): void {
  process.nextTick(() => (heldTick ??= executionAsyncResource()));
}

/** A second listener serving only /metrics, for `metrics.addr`. */
async function listenMetrics(app: FastifyInstance, addr: string): Promise<FastifyInstance> {
  const server = Fastify({ logger: false });
  server.get('/metrics', metricsHandler(app.operations.metrics));
  await listen(server, 'metrics.addr', addr);
  return server;
}

/**
 * Listens on `addr`; `:PORT` means every interface, IPv6 and IPv4 where the machine has
 * IPv6, IPv4 alone otherwise. The usual mistakes become a SetupError naming the key.
 */
async function listen(server: FastifyInstance, key: string, addr: string): Promise<void> {
  const { host, port } = splitAddress(addr);
  try {
    try {
      await server.listen({ host: host === '' ? '::' : host, port });
    } catch (err) {
      if (host !== '' || errnoCode(err) !== 'EAFNOSUPPORT') throw err;
      await server.listen({ host: '0.0.0.0', port });
    }
  } catch (err) {
    const code = errnoCode(err);
    const fix: Record<string, string> = {
      EADDRINUSE: `port ${port} is in use by another process (a second Berth or registry?): stop it or choose another port`,
      EACCES: `port ${port} needs privileges this user lacks: use a port above 1023 (map it in front) or grant CAP_NET_BIND_SERVICE`,
      EADDRNOTAVAIL: `${host} is not an address of this machine: use one of its addresses, 0.0.0.0 or :${port}`,
      ENOTFOUND: `the host name ${host} does not resolve: use an address of this machine, 0.0.0.0 or :${port}`,
      EAI_AGAIN: `the host name ${host} does not resolve: use an address of this machine, 0.0.0.0 or :${port}`,
    };
    const text = code === undefined ? undefined : fix[code];
    throw text === undefined ? err : new SetupError(`${key} ${addr}: ${text}`);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
