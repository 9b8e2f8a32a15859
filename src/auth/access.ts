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
   * A listing filtered to what the caller may pull (the browse API's lists, docker
   * search): anyone may ask, anonymous callers included, and gets what it may see.
   */
  listing?: boolean;
  /**
   * The source of a cross-repository mount. Pull on it is asked for (it is part of the
   * challenge's scope); a token must carry it when the rules let the caller read the
   * source, but a caller the rules do not let read it is not refused: the mount is not
   * honoured and the client gets an ordinary upload session instead.
   */
  mountFrom?: string;
}

/**
 * Access is computed in one place from method and route: GET/HEAD pull,
 * POST/PUT/PATCH pull+push, DELETE delete; a cross-repository mount also needs
 * pull on the source (see `mountFrom`). Cancelling an upload session (DELETE) deletes
 * nothing stored: it needs what the session's other requests need, pull and push.
 */
export function requiredAccess(method: string, path: ApiPath, mountFrom: string | undefined): AccessRequest {
  if (path.kind === 'base' || path.kind === 'unknown') return { repositories: [], catalog: false };
  if (path.kind === 'catalog') return { repositories: [], catalog: true };
  const actions: Action[] =
    method === 'GET' || method === 'HEAD'
      ? ['pull']
      : method === 'DELETE' && path.kind !== 'upload'
        ? ['delete']
        : ['pull', 'push'];
  const repositories = [{ name: path.name, actions }];
  if (path.kind === 'uploads' && method === 'POST' && mountFrom !== undefined) {
    return { repositories, catalog: false, mountFrom };
  }
  return { repositories, catalog: false };
}

/**
 * The browse API (`/_berth/api`) and docker search (`/v1/search`) are authorized like
 * pulls: one repository's pages need pull on it; listings and searches show each
 * caller, anonymous ones too, the repositories it may pull. Unlike `_catalog`, they do
 * not ask anonymous callers to authenticate: `docker search` and the web UI's visitors
 * get what anonymous may pull.
 */
export function browseAccess(repository: string | undefined): AccessRequest {
  if (repository === undefined) return { repositories: [], catalog: false, listing: true };
  return { repositories: [{ name: repository, actions: ['pull'] }], catalog: false };
}
