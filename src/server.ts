import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { splitAddress, type Config } from './config.js';

/** Starts the registry on the configured address and closes it cleanly on SIGTERM/SIGINT. */
export async function serve(config: Config): Promise<FastifyInstance> {
  const app = await buildApp(config);
  const { host, port } = splitAddress(config.http.addr);
  await app.listen({ host, port });
  const address = app.server.address();
  app.log.info(
    { port: typeof address === 'object' && address ? address.port : port, storage: config.storage.root },
    'berth is ready',
  );
  if (config.auth.mode === 'none' && !isLoopback(host)) {
    app.log.warn(
      { addr: config.http.addr },
      'auth.mode is none: anyone who can reach this address may push and delete (see README, "Authentication")',
    );
  }

  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
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

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
