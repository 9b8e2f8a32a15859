import type { FastifyReply } from 'fastify';
import type { ApiPath } from './path.js';
import type { Handler } from './context.js';
import { pageSize } from './query.js';

type TagsPath = Extract<ApiPath, { kind: 'tags' }>;

/** Catalog pages default to 100 entries (as the reference registry); no page exceeds 10,000. */
const DEFAULT_CATALOG_PAGE = 100;
const MAX_PAGE = 10_000;

/** RFC 5988 link to the next page, as Docker's registry and the OCI spec describe it. */
function linkNext(reply: FastifyReply, base: string, n: number, last: string | undefined): void {
  if (last === undefined) return;
  reply.header('Link', `<${base}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`);
}

const listTags: Handler<TagsPath> = ({ reply, path, query, services }) => {
  const n = pageSize(query, MAX_PAGE, MAX_PAGE);
  const { tags, more } = services.manifests.tags(path.name, query.last ?? '', n);
  if (more) linkNext(reply, `/v2/${path.name}/tags/list`, n, tags.at(-1));
  return reply.send({ name: path.name, tags });
};

const listCatalog: Handler<{ kind: 'catalog' }> = ({ reply, query, services, grant }) => {
  const n = pageSize(query, DEFAULT_CATALOG_PAGE, MAX_PAGE);
  const visible = grant.unrestricted ? undefined : (repository: string) => grant.mayList(repository);
  const { repositories, more } = services.manifests.repositories(query.last ?? '', n, visible);
  if (more) linkNext(reply, '/v2/_catalog', n, repositories.at(-1));
  return reply.send({ repositories });
};

export const tagsRoutes = { GET: listTags };
export const catalogRoutes = { GET: listCatalog };
