import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { makeConfig, type Config } from '../../src/config.js';
import { seedUsers, type SeedUser } from './users.js';

export interface TestRegistry {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** host:port, as registry clients want it */
  host: string;
  dataDir: string;
  config: Config;
  app: FastifyInstance;
  close(): Promise<void>;
}

type Sections = Parameters<typeof makeConfig>[0];

/**
 * Starts a real Berth on 127.0.0.1 with a fresh temporary data directory. `close()`
 * stops it and removes the directory unless `keepData` is set.
 */
export async function startRegistry(
  overrides: Sections = {},
  options: { dataDir?: string; keepData?: boolean; users?: readonly SeedUser[]; clock?: () => number } = {},
): Promise<TestRegistry> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'berth-test-')));
  // A registry that does not come up (tests of startup errors) leaves no directory behind.
  const discard = async () => {
    if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
  };
  let config: Config;
  let app: FastifyInstance;
  try {
    if (options.users) await seedUsers(dataDir, options.users);
    const sections = overrides ?? {};
    config = makeConfig({
      ...sections,
      http: { addr: '127.0.0.1:0', ...(sections.http as object) },
      storage: { root: dataDir, ...(sections.storage as object) },
      log: { level: 'silent', ...(sections.log as object) },
      // The registry shares its event loop with the test (spawnSync of the CLI blocks it for
      // seconds): the overload protection would answer 503. Tests of it turn it on.
      limits: { maxEventLoopDelay: 0, ...(sections.limits as object) },
    });
    app = await buildApp(config, { clock: options.clock });
  } catch (err) {
    await discard();
    throw err;
  }
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    await app.close();
    await discard();
    throw err;
  }
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const host = `127.0.0.1:${address.port}`;
  return {
    url: `http://${host}`,
    host,
    dataDir,
    config,
    app,
    async close() {
      await app.close();
      if (!options.keepData && options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
