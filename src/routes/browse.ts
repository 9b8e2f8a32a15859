import type { FastifyInstance, FastifyRequest } from 'fastify';
import { browseAccess } from '../auth/access.js';
import type { Authorizer, Grant } from '../auth/index.js';
import type { BrowseService, Page, Visible } from '../browse/service.js';
import type { Config } from '../config.js';
import { oci } from '../errors.js';
import { validateRepositoryName } from '../names.js';
import { pageSize, readQuery } from './query.js';

/** What a path under /_berth/api/repositories/ names: greedy name, the last keyword wins (as /v2 paths). */
export type BrowsePath =
  | { kind: 'repository'; name: string }
  | { kind: 'tags'; name: string }
  | { kind: 'manifests'; name: string }
  | { kind: 'manifest'; name: string; reference: string };

export function parseBrowsePath(rest: string): BrowsePath {
  let match: RegExpExecArray | null;
  if ((match = /^(.+)\/manifests\/([^/]+)$/.exec(rest))) return { kind: 'manifest', name: match[1]!, reference: match[2]! };
  if ((match = /^(.+)\/manifests$/.exec(rest))) return { kind: 'manifests', name: match[1]! };
  if ((match = /^(.+)\/tags$/.exec(rest))) return { kind: 'tags', name: match[1]! };
  return { kind: 'repository', name: rest };
}

function visibleTo(grant: Grant): Visible {
  return grant.unrestricted ? undefined : (repository) => grant.mayPull(repository);
}

function page<K extends string>(key: K, result: Page<unknown>): Record<K | 'next', unknown> {
  return { [key]: result.items, next: result.next } as Record<K | 'next', unknown>;
}

/**
 * The browse API under /_berth/api (documented in the README's "Browse API") and docker
 * search at /v1/search. Read-only, JSON, authorized like pulls through the same authorizer
 * as /v2: one repository's pages need pull there (401 or 403 exactly as /v2 answers),
 * listings show only the repositories the caller may pull.
 */
export async function browseRoutes(app: FastifyInstance, opts: { browse: BrowseService; authorizer: Authorizer; config: Config }) {
  const { browse, authorizer } = opts;
  const authorize = (request: FastifyRequest, repository?: string) => authorizer.authorize(request, browseAccess(repository));

  app.get('/_berth/api/repositories', async (request, reply) => {
    const query = readQuery(request.query);
    const grant = await authorize(request);
    const n = pageSize(query, 100, 1000, 1);
    return reply.send(page('repositories', browse.repositories(query.q, n, query.last ?? '', visibleTo(grant))));
  });

  app.get('/_berth/api/repositories/*', async (request, reply) => {
    const query = readQuery(request.query);
    const path = parseBrowsePath((request.params as { '*': string })['*']);
    validateRepositoryName(path.name);
    const grant = await authorize(request, path.name);
    switch (path.kind) {
      case 'repository': {
        const actions = {
          pull: true,
          push: grant.may(path.name, 'push'),
          delete: opts.config.storage.delete && grant.may(path.name, 'delete'),
        };
        return reply.send({ ...browse.repository(path.name), actions });
      }
      case 'tags':
        return reply.send(page('tags', browse.tags(path.name, pageSize(query, 100, 1000, 1), query.last ?? '')));
      case 'manifests': {
        const tagged = query.tagged === undefined || query.tagged === '' ? undefined : query.tagged === 'true';
        if (query.tagged !== undefined && query.tagged !== '' && !['true', 'false'].includes(query.tagged)) {
          throw oci('UNSUPPORTED', `tagged must be true or false, not "${query.tagged}"`, undefined, { status: 400 });
        }
        return reply.send(page('manifests', browse.manifests(path.name, tagged, pageSize(query, 100, 1000, 1), query.last ?? '')));
      }
      case 'manifest':
        return reply.send(browse.manifest(path.name, path.reference, visibleTo(grant)));
    }
  });

  app.get('/_berth/api/layers/:digest', async (request, reply) => {
    const grant = await authorize(request);
    return reply.send(browse.layer((request.params as { digest: string }).digest, visibleTo(grant)));
  });

  app.get('/_berth/api/storage', async (request, reply) => {
    const grant = await authorize(request);
    return reply.send(browse.storage(visibleTo(grant)));
  });

  // docker search: the daemon asks /v1/search?q=TERM&n=LIMIT of the registry named in the term.
  app.get('/v1/search', async (request, reply) => {
    const query = readQuery(request.query);
    const grant = await authorize(request);
    const n = pageSize(query, 25, 100, 1);
    const pageNumber = query.page === undefined || query.page === '' ? 1 : Number(query.page);
    if (!Number.isInteger(pageNumber) || pageNumber < 1) {
      throw oci('PAGINATION_NUMBER_INVALID', `invalid page ${query.page}: give a whole number from 1`, { page: query.page });
    }
    return reply.send(browse.search(query.q ?? '', n, pageNumber, visibleTo(grant)));
  });
}
