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
