import { oci } from '../errors.js';
import type { AccessRequest, Action } from './access.js';
import type { Authenticator, Caller } from './authenticate.js';
import { unauthorized, type ChallengeScheme } from './challenge.js';
import type { AccessRules, Identity } from './rules.js';
import { ADMIN_SCOPE, CATALOG_SCOPE, covers, type ResourceAccess } from './scope.js';
import { presentedSession } from './sessions.js';

/**
 * The parts of an HTTP request that matter here (a FastifyRequest has them all, so routes
 * pass theirs as it is).
 */
export interface CallerInfo {
  /** Cookie and X-Berth-CSRF matter to the web UI's sessions. */
  headers: { authorization?: string | undefined; cookie?: string | undefined; 'x-berth-csrf'?: string | string[] | undefined };
  /** The HTTP method (a session cookie on anything but GET and HEAD needs the CSRF header); absent counts as a change. */
  method?: string;
  /** The client's address, for failed-login rate limiting. */
  ip: string;
  /** How the client addressed Berth (`http`, `127.0.0.1:5000`): the default token realm lives there. */
  protocol: string;
  host: string;
}

/** What an authorized request may do beyond the access it asked for. */
export interface Grant {
  readonly identity: Identity;
  /** True when nothing is restricted (mode none): callers may skip per-repository checks. */
  readonly unrestricted: boolean;
  /** Whether the caller may read `repository` (a mount source, automatic mounts). */
  mayPull(repository: string): boolean;
  /** Whether `_catalog` shows `repository` to the caller. */
  mayList(repository: string): boolean;
  /** Whether the caller may do `action` in `repository` (what the browse API shows it may do). */
  may(repository: string, action: Action): boolean;
}

/**
 * The authorization seam. Every request passes through `authorize` with the access it
 * needs (see access.ts) and gets a Grant, or a RegistryError: 401 UNAUTHORIZED with the
 * challenge for missing or invalid credentials, 403 DENIED for valid ones without the
 * access, 429 TOOMANYREQUESTS while a client is locked out after failed logins.
 */
export interface Authorizer {
  authorize(caller: CallerInfo, access: AccessRequest): Promise<Grant>;
}

export const UNRESTRICTED: Grant = {
  identity: { kind: 'anonymous' },
  unrestricted: true,
  mayPull: () => true,
  mayList: () => true,
  may: () => true,
};

/** Mode none: everybody may do everything. */
export const allowEverything: Authorizer = { authorize: async () => UNRESTRICTED };

interface Needed {
  scope: ResourceAccess;
  rulesAllow: boolean;
  tokenAllows: boolean;
}

/**
 * Modes basic and token. The access rules decide what an identity may do; a token can
 * only narrow that further to what it grants, for the request and for everything the
 * Grant lets it read besides (mount sources, the catalog's entries). Anonymous callers
 * without the access are asked to authenticate (401); authenticated ones are refused
 * (403); a token that lacks access its holder could have is answered with 401
 * `insufficient_scope`, so the client fetches a better one.
 */
export class RuleAuthorizer implements Authorizer {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly rules: AccessRules,
    private readonly adminGroups: readonly string[],
    private readonly challenge: (origin: string) => ChallengeScheme,
  ) {}

  async authorize(info: CallerInfo, access: AccessRequest): Promise<Grant> {
    const scheme = this.challenge(`${info.protocol}://${info.host}`);
    const wanted = requestedScope(access);
    const result = await this.authenticator.authenticate(info.headers.authorization, info.ip, presentedSession(info));
    if ('failed' in result) {
      if (result.failed === 'csrf') throw oci('DENIED', 'a change made with a session cookie needs its X-Berth-CSRF header');
      const message = result.failed === 'token' ? 'invalid or expired token' : 'invalid username or password';
      throw unauthorized(scheme, wanted, message, result.failed === 'token' ? 'invalid_token' : undefined);
    }
    const { identity, token } = result;
    const needed = this.needed(result, access);
    const anonymous = identity.kind === 'anonymous';
    // The API root answers whether the client is authenticated (docker login checks it).
    const root = access.repositories.length === 0 && !access.catalog && !access.admin && !access.listing;
    if (root && anonymous && !token) throw unauthorized(scheme, []);
    if (needed.some((n) => !n.rulesAllow)) {
      if (anonymous) throw unauthorized(scheme, wanted);
      throw oci('DENIED', 'requested access to the resource is denied', needed.filter((n) => !n.rulesAllow).map((n) => n.scope));
    }
    if (needed.some((n) => !n.tokenAllows)) throw unauthorized(scheme, wanted, 'insufficient scope', 'insufficient_scope');
    return this.grant(result);
  }

  private needed({ identity, token }: Caller, access: AccessRequest): Needed[] {
    const tokenAllows = (type: string, name: string, action: string) =>
      token === undefined || covers(token.access, type, name, action);
    const needed: Needed[] = access.repositories.map(({ name, actions }) => ({
      scope: { type: 'repository', name, actions: [...actions] },
      rulesAllow: actions.every((action) => this.rules.allows(identity, name, action)),
      tokenAllows: actions.every((action) => tokenAllows('repository', name, action)),
    }));
    if (access.mountFrom !== undefined && this.rules.allows(identity, access.mountFrom, 'pull' satisfies Action)) {
      // A mount source the caller may read but its token does not cover: 401 with both scopes
      // in the challenge, so the client gets a token for the mount (as Distribution requires).
      // One the rules do not let it read is no failure: the client uploads instead.
      needed.push({
        scope: { type: 'repository', name: access.mountFrom, actions: ['pull'] },
        rulesAllow: true,
        tokenAllows: tokenAllows('repository', access.mountFrom, 'pull'),
      });
    }
    if (access.catalog) {
      // The catalog is registry-wide: anonymous callers are asked to authenticate (in mode
      // token an anonymous token with the catalog scope will do); the listing is filtered.
      needed.push({
        scope: CATALOG_SCOPE,
        rulesAllow: identity.kind === 'user' || token !== undefined,
        tokenAllows: tokenAllows('registry', 'catalog', '*'),
      });
    }
    if (access.admin) {
      needed.push({ scope: ADMIN_SCOPE, rulesAllow: this.isAdmin(identity), tokenAllows: tokenAllows('registry', 'admin', '*') });
    }
    return needed;
  }

  private isAdmin(identity: Identity): boolean {
    return identity.kind === 'user' && identity.groups.some((g) => this.adminGroups.includes(g));
  }

  /**
   * What the caller may read beyond the request itself: what the rules allow its identity,
   * narrowed by its token if it presented one, whoever issued that token. A token for
   * `bob/app` thus never mounts from `alice/app` nor lists it, even when the rules would
   * let bob read it: the token's holder proved only what the token grants.
   */
  private grant({ identity, token }: Caller): Grant {
    const tokenCovers = (type: string, name: string, action: string) =>
      token === undefined || covers(token.access, type, name, action);
    const may = (repository: string, action: Action) =>
      this.rules.allows(identity, repository, action) && tokenCovers('repository', repository, action);
    return {
      identity,
      unrestricted: false,
      mayPull: (repository) => may(repository, 'pull'),
      mayList: (repository) =>
        this.rules.allows(identity, repository, 'pull' satisfies Action) && tokenCovers('registry', 'catalog', '*'),
      may,
    };
  }
}

/** The scope a challenge names: every repository's actions, the mount source, the catalog or admin. */
function requestedScope(access: AccessRequest): ResourceAccess[] {
  const scope: ResourceAccess[] = access.repositories.map((r) => ({ type: 'repository', name: r.name, actions: [...r.actions] }));
  if (access.mountFrom !== undefined) scope.push({ type: 'repository', name: access.mountFrom, actions: ['pull'] });
  if (access.catalog) scope.push(CATALOG_SCOPE);
  if (access.admin) scope.push(ADMIN_SCOPE);
  return scope;
}
