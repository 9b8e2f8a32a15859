import { parseAuthorization } from './credentials.js';
import type { PasswordVerifier } from './credentials.js';
import { ANONYMOUS, type Identity } from './rules.js';
import type { TokenClaims, TokenVerifier } from './tokens.js';
import type { UserDirectory } from './users.js';

/** Who made a request, and what the token it presented (if any) grants. */
export interface Caller {
  identity: Identity;
  token?: TokenClaims;
}

export type Authentication = Caller | { failed: 'credentials' | 'token' };

/**
 * Turns an Authorization header into a caller: HTTP Basic against the user directory
 * (rate-limited per address and per user), or a registry token. No header is the
 * anonymous caller; wrong credentials are a failure, never a fallback to anonymous.
 */
export class Authenticator {
  constructor(
    private readonly users: UserDirectory,
    private readonly passwords: PasswordVerifier,
    private readonly extraGroups: Readonly<Record<string, readonly string[]>>,
    private readonly tokens: { verifier: TokenVerifier; own: boolean } | undefined,
  ) {}

  async authenticate(authorization: string | undefined, address: string): Promise<Authentication> {
    const credentials = parseAuthorization(authorization);
    if (credentials === undefined) return { identity: ANONYMOUS };
    if (credentials.scheme === 'basic') {
      const identity = await this.password(credentials.user, credentials.password, address);
      return identity ? { identity } : { failed: 'credentials' };
    }
    if (credentials.scheme === 'bearer' && this.tokens) {
      let claims: TokenClaims;
      try {
        claims = await this.tokens.verifier.verify(credentials.token);
      } catch {
        return { failed: 'token' };
      }
      if (claims.subject === '') return { identity: ANONYMOUS, token: claims };
      const stored = this.users.lookup(claims.subject);
      // Berth's own tokens die with their user; an external issuer's users need not exist here.
      if (this.tokens.own && !stored) return { failed: 'token' };
      return { identity: this.user(claims.subject, stored?.groups ?? []), token: claims };
    }
    return { failed: credentials.scheme === 'bearer' ? 'token' : 'credentials' };
  }

  /** Checks a user's password; undefined if wrong. Throws 429 while the address or user is locked out. */
  async password(name: string, password: string, address: string): Promise<Identity | undefined> {
    const user = await this.passwords.check(name, password, address);
    return user && this.user(user.name, user.groups);
  }

  private user(name: string, groups: readonly string[]): Identity {
    const all = new Set(groups);
    for (const [group, members] of Object.entries(this.extraGroups)) if (members.includes(name)) all.add(group);
    return { kind: 'user', name, groups: [...all] };
  }
}
