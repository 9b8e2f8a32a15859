/**
 * Parses a /v2 API path into the resource it names. Fastify's router ends a
 * parameter at `/` and repository names contain slashes, so the registry matches
 * the whole path here, as the Go registries do. The greedy name takes the last
 * `/blobs/`, `/manifests/`… so names may contain those words as components.
 */
export type ApiPath =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'unknown' };

const ROUTES: ReadonlyArray<[RegExp, (m: RegExpExecArray) => ApiPath]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/** The last path parsed: the request hooks and the dispatcher parse each request's path in turn. */
let last: { pathname: string; path: ApiPath } = { pathname: '', path: { kind: 'unknown' } };

/** `pathname` is the raw (still percent-encoded) path without the query string. The result is shared: never mutate it. */
export function parseApiPath(pathname: string): ApiPath {
  if (pathname !== last.pathname) last = { pathname, path: parse(pathname) };
  return last.path;
}

function parse(pathname: string): ApiPath {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return { kind: 'unknown' };
  }
  for (const [pattern, build] of ROUTES) {
    const match = pattern.exec(path);
    if (match) return build(match);
  }
  return { kind: 'unknown' };
}
