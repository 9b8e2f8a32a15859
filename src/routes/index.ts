import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requiredAccess } from '../auth/access.js';
import type { Authorizer } from '../auth/index.js';
import { oci } from '../errors.js';
import { validateRepositoryName } from '../names.js';
import { mirrorHandler } from '../proxy/routes.js';
import { blobRoutes } from './blobs.js';
import type { Handler, Services } from './context.js';
import { catalogRoutes, tagsRoutes } from './listings.js';
import { manifestRoutes, referrersRoutes } from './manifests.js';
import { parseApiPath, type ApiPath } from './path.js';
import { readQuery } from './query.js';
import { uploadRoutes, uploadsRoutes } from './uploads.js';

type RouteTable = { [K in ApiPath['kind']]: Partial<Record<string, Handler<Extract<ApiPath, { kind: K }>>>> };

const base: Handler<unknown> = ({ reply }) => reply.type('application/json').send('{}');

const ROUTES: RouteTable = {
  base: { GET: base, HEAD: base },
  catalog: catalogRoutes,
  tags: tagsRoutes,
  manifest: manifestRoutes,
  blob: blobRoutes,
  uploads: uploadsRoutes,
  upload: uploadRoutes,
  referrers: referrersRoutes,
  unknown: {},
};

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * The /v2 API. One wildcard route hands every request to `dispatch`, which parses
 * the path, validates the repository name, authorizes, and calls the handler.
 */
export async function registryRoutes(app: FastifyInstance, opts: { services: Services; authorizer: Authorizer }) {
  // Bodies are streamed by the handlers themselves: never buffered, never parsed here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  const dispatch = async (request: FastifyRequest, reply: FastifyReply) => {
    const pathname = request.url.split('?', 1)[0]!;
    const path = parseApiPath(pathname);
    if ('name' in path) validateRepositoryName(path.name);
    if (path.kind === 'unknown') throw oci('UNSUPPORTED', 'unknown API endpoint', { path: pathname }, { status: 404 });
    const handlers = ROUTES[path.kind];
    const handler = handlers[request.method] as Handler<ApiPath> | undefined;
    if (!handler) {
      throw oci('UNSUPPORTED', `${request.method} is not supported on this endpoint`, undefined, {
        headers: { Allow: Object.keys(handlers).join(', ') },
      });
    }
    const query = readQuery(request.query);
    const mirror = 'name' in path ? opts.services.routing.resolve(path.name, query.ns, request.host) : undefined;
    const serve = mirror ? (mirrorHandler(path as Extract<ApiPath, { name: string }>, request.method, mirror) as Handler<ApiPath>) : handler;
    const grant = await opts.authorizer.authorize(request, requiredAccess(request.method, path, query.from));
    return serve({ request, reply, path, query, services: opts.services, grant });
  };

  for (const url of ['/v2', '/v2/', '/v2/*']) {
    app.route({ method: METHODS, url, exposeHeadRoute: false, handler: dispatch });
  }
}
