import fastifyStatic from '@fastify/static';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Where `npm run build` puts the web UI (web/build.ts): index.html and assets/ with
 * content-hashed names. This module is src/ui/routes.ts or dist/ui/routes.js, both two
 * levels below the package root.
 */
export const WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/**
 * The pages only load what Berth serves: their own script, style sheet and icon, and the
 * JSON API. No inline script or style, no other origin, never framed.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

/** Paths the client-side router shows a page for; each gets the same document. */
const PAGES = ['/', '/repositories', '/repositories/*', '/layers/*', '/storage', '/sign-in'];

/**
 * The web UI: the document at every page's path, and its hashed assets under /assets/
 * (served from the build's precompressed copies when the client accepts brotli or gzip,
 * cached for a year: a new build changes their names). The document itself is revalidated
 * on every load (ETag), so a new build is picked up at once.
 */
export async function uiRoutes(app: FastifyInstance, opts: { root: string }) {
  const document = readFileSync(join(opts.root, 'index.html'));
  const etag = `"${createHash('sha256').update(document).digest('base64url').slice(0, 27)}"`;

  await app.register(fastifyStatic, {
    root: join(opts.root, 'assets'),
    prefix: '/assets/',
    wildcard: false,
    index: false,
    preCompressed: true,
    immutable: true,
    maxAge: '365d',
    setHeaders: (res) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    },
  });

  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.headers({ ...SECURITY_HEADERS, 'Cache-Control': 'no-cache', ETag: etag });
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.type('text/html; charset=utf-8').send(document);
  };
  for (const url of PAGES) app.get(url, page);
}

/** Whether the built UI is there to serve. */
export function uiBuilt(root: string): boolean {
  return existsSync(join(root, 'index.html')) && existsSync(join(root, 'assets'));
}

/**
 * In mode basic, a 401 carries `WWW-Authenticate: Basic`, which makes a browser open its
 * own password dialog, also for a page's background requests. The UI marks those with
 * `X-Requested-With: XMLHttpRequest` (as other web frameworks do) and gets its 401s
 * without the challenge; it shows its own sign-in form instead. Other clients are unaffected.
 */
export function withoutBrowserChallenge(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) {
  if (reply.statusCode === 401 && request.headers['x-requested-with'] === 'XMLHttpRequest') {
    const challenge = reply.getHeader('www-authenticate');
    if (typeof challenge === 'string' && challenge.startsWith('Basic')) reply.removeHeader('www-authenticate');
  }
  done(null, payload);
}
