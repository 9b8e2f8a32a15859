import type { ApiPath } from '../routes/path.js';

export type Action = 'pull' | 'push' | 'delete';

/**
 * What a request needs: actions on repositories, registry-wide catalog access, or
 * administration (Berth's own admin API: collection, accounting, repository removal).
 */
export interface AccessRequest {
  repositories: ReadonlyArray<{ name: string; actions: readonly Action[] }>;
  catalog: boolean;
  admin?: boolean;
  /**
   * The source of a cross-repository mount. Pull on it is asked for (it is part of the
   * challenge's scope) but not required: without it the mount is not honoured and the
   * client gets an ordinary upload session instead.
   */
  mountFrom?: string;
}

/**
 * Access is computed in one place from method and route: GET/HEAD pull,
 * POST/PUT/PATCH pull+push, DELETE delete; a cross-repository mount also needs
 * pull on the source (see `mountFrom`).
 */
export function requiredAccess(method: string, path: ApiPath, mountFrom: string | undefined): AccessRequest {
  if (path.kind === 'base' || path.kind === 'unknown') return { repositories: [], catalog: false };
  if (path.kind === 'catalog') return { repositories: [], catalog: true };
  const actions: Action[] =
    method === 'GET' || method === 'HEAD' ? ['pull'] : method === 'DELETE' ? ['delete'] : ['pull', 'push'];
  const repositories = [{ name: path.name, actions }];
  if (path.kind === 'uploads' && method === 'POST' && mountFrom !== undefined) {
    return { repositories, catalog: false, mountFrom };
  }
  return { repositories, catalog: false };
}

/**
 * The browse API (`/_berth/api`) and docker search (`/v1/search`) are authorized like
 * pulls: one repository's pages need pull on it; listings and searches are filtered per
 * repository like `_catalog`, so they need what the catalog needs.
 */
export function browseAccess(repository: string | undefined): AccessRequest {
  if (repository === undefined) return { repositories: [], catalog: true };
  return { repositories: [{ name: repository, actions: ['pull'] }], catalog: false };
}
