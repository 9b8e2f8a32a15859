import { createServer, request, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { makeConfig } from '../../src/config.js';

export const PUSHER = { name: 'pusher', password: 'pusher-Pw-1' };
export const MIRROR = { name: 'mirror', password: 'mirror-Pw-2' };

/** The upstream's access rules: token mode, the mirror's account pulls everything, anonymous pulls public/**. */
export const UPSTREAM_AUTH = {
  mode: 'token',
  rules: [
    { repositories: '**', users: ['pusher'], actions: ['pull', 'push', 'delete'] },
    { repositories: '**', users: ['mirror'], actions: ['pull'] },
    { repositories: 'public/**', users: ['anonymous'], actions: ['pull'] },
  ],
};

export interface Upstream {
  app: FastifyInstance;
  port: number;
  url: string;
}

/** A Berth in token mode on a data directory, on `port` (0: any), so it can be stopped and restarted in place. */
export async function startUpstream(dataDir: string, port = 0): Promise<Upstream> {
  const app = await buildApp(
    makeConfig({
      storage: { root: dataDir, fsync: false },
      log: { level: 'silent' },
      auth: UPSTREAM_AUTH,
      gc: { interval: 0 },
    }),
  );
  try {
    await app.listen({ host: '127.0.0.1', port });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return { app, port: address.port, url: `http://127.0.0.1:${address.port}` };
}

/**
 * A loopback HTTP proxy in front of a registry: it records every request, can corrupt
 * the bodies of chosen blobs (one byte flipped, length unchanged) and hold them after
 * their first MiB. A refused connection
 * to the registry answers 502.
 */
export class CountingProxy {
  readonly requests: string[] = [];
  /** The status each request in `requests` was answered with (0 until it is). */
  readonly statuses: number[] = [];
  readonly corrupt = new Set<string>();
  /** Blobs whose bodies stop after their first MiB until the promise settles. */
  readonly hold = new Map<string, Promise<void>>();
  private server: Server | undefined;
  url = '';
  host = '';

  constructor(private readonly target: () => string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? '/';
      const n = this.requests.push(`${req.method} ${path}`) - 1;
      this.statuses.push(0);
      const target = new URL(this.target());
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path, headers: { ...req.headers, host: target.host } },
        (up) => {
          this.statuses[n] = up.statusCode ?? 0;
          res.writeHead(up.statusCode ?? 502, up.headers);
          const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path.split('?')[0]!)?.[1];
          let flipped = !(digest && this.corrupt.has(digest) && req.method === 'GET');
          const gate = digest === undefined ? undefined : this.hold.get(digest);
          let held = false;
          let sent = 0;
          up.on('data', (chunk: Buffer) => {
            sent += chunk.length;
            if (gate && !held && sent >= 1024 * 1024) {
              held = true;
              up.pause();
              void gate.then(() => up.resume());
            }
            if (!flipped && chunk.length > 0) {
              chunk = Buffer.from(chunk);
              chunk[chunk.length - 1]! ^= 0xff;
              flipped = true;
            }
            res.write(chunk);
          });
          up.on('end', () => res.end());
          up.on('error', () => res.destroy());
        },
      );
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    this.host = `127.0.0.1:${address.port}`;
    this.url = `http://${this.host}`;
  }

  /**
   * Requests recorded so far whose method and path match, not counting those answered 401
   * (the token flow's challenges).
   */
  count(method: string, pattern: RegExp): number {
    return this.requests.filter((r, i) => this.statuses[i] !== 401 && r.startsWith(`${method} `) && pattern.test(r.slice(method.length + 1))).length;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
