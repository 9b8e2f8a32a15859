import { oci } from '../errors.js';
import { validateRepositoryName } from '../names.js';
import type { Action } from './access.js';
import type { Authenticator } from './authenticate.js';
import { unauthorized, type ChallengeScheme } from './challenge.js';
import { parseAuthorization } from './credentials.js';
import { ANONYMOUS, type AccessRules, type Identity } from './rules.js';
import { parseScopes, type ResourceAccess } from './scope.js';
import type { TokenSigner } from './tokens.js';

/** A token request, from the query (GET, Basic credentials) or the OAuth2 form (POST). */
export interface TokenRequest {
  authorization: string | undefined;
  address: string;
  service: string | undefined;
  scopes: string[];
  /** OAuth2 form only. */
  grantType?: string;
  username?: string;
  password?: string;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  scope?: string;
}

const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

/**
 * Berth's token endpoint (the Docker Registry token authentication flow). Credentials,
 * if any, are checked like HTTP Basic on the registry; without them the token is
 * anonymous. The token grants what was asked for as far as the access rules allow, so
 * a request for more than the caller may have still succeeds, with less in it.
 */
export class TokenServer {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly rules: AccessRules,
    private readonly adminGroups: readonly string[],
    private readonly signer: TokenSigner,
    private readonly service: string,
    private readonly realm: string,
  ) {}

  async issue(request: TokenRequest): Promise<TokenResponse> {
    if (request.service !== undefined && request.service !== '' && request.service !== this.service) {
      throw oci('DENIED', `this token server issues tokens for service "${this.service}"`, { service: request.service }, { status: 400 });
    }
    const identity = await this.identify(request);
    const access = this.grantable(identity, parseScopes(request.scopes));
    const { token, expiresIn, issuedAt } = await this.signer.sign(identity.kind === 'user' ? identity.name : '', access);
    return {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: issuedAt.toISOString(),
      ...(request.grantType !== undefined && { scope: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ') }),
    };
  }

  private async identify(request: TokenRequest): Promise<Identity> {
    const scheme: ChallengeScheme = { scheme: 'basic', realm: this.realm };
    let name: string | undefined;
    let password: string | undefined;
    if (request.grantType !== undefined) {
      if (request.grantType !== 'password') {
        throw oci('UNSUPPORTED', `grant_type "${request.grantType}" is not supported; use password`, undefined, { status: 400 });
      }
      name = request.username;
      password = request.password;
    } else {
      const credentials = parseAuthorization(request.authorization);
      if (credentials?.scheme === 'basic') ({ user: name, password } = credentials);
      else if (credentials !== undefined) throw unauthorized(scheme, [], 'use HTTP Basic credentials for a token');
    }
    if (name === undefined || name === '' || password === undefined) return ANONYMOUS;
    const identity = await this.authenticator.password(name, password, request.address);
    if (!identity) throw unauthorized(scheme, [], 'invalid username or password');
    return identity;
  }

  private grantable(identity: Identity, requested: ResourceAccess[]): ResourceAccess[] {
    const granted: ResourceAccess[] = [];
    for (const scope of requested) {
      let actions: string[] = [];
      if (scope.type === 'repository' && isRepositoryName(scope.name)) {
        const allowed = this.rules.actions(identity, scope.name);
        const asked = scope.actions.includes('*') ? ACTIONS : scope.actions;
        actions = ACTIONS.filter((a) => asked.includes(a) && allowed.has(a));
      } else if (scope.type === 'registry' && scope.name === 'catalog' && scope.actions.includes('*')) {
        actions = ['*']; // the listing itself is filtered by the rules
      } else if (scope.type === 'registry' && scope.name === 'admin' && scope.actions.includes('*')) {
        if (identity.kind === 'user' && identity.groups.some((g) => this.adminGroups.includes(g))) actions = ['*'];
      }
      if (actions.length > 0) granted.push({ type: scope.type, name: scope.name, actions });
    }
    return granted;
  }
}

function isRepositoryName(name: string): boolean {
  try {
    validateRepositoryName(name);
    return true;
  } catch {
    return false;
  }
}
