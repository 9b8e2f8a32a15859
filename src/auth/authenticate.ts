import { parseAuthorization } from './credentials.js';
import type { PasswordVerifier } from './credentials.js';
import { ANONYMOUS, type Identity } from './rules.js';
import type { PresentedSession, Session, SessionStore } from './sessions.js';
import type { TokenClaims, TokenVerifier } from './tokens.js';
import type { UserDirectory } from './users.js';

/** Who made a request, and what the token it presented (if any) grants. */
export interface Caller {
  identity: Identity;
  token?: TokenClaims;
  /** The web UI session the caller signed in with. */
  session?: Session;
}

/** `csrf`: a session cookie on a change without the session's CSRF header. */
export type Authentication = Caller | { failed: 'credentials' | 'token' | 'csrf' };

/**
 * Turns an Authorization header into a caller: HTTP Basic against the user directory
 * (rate-limited per address and per user), or a registry token. Without one, the web UI's
 * session cookie (when sessions are on); a cookie naming no live session counts for
 * nothing. No credentials is the anonymous caller; wrong credentials are a failure, never
 * a fallback to anonymous.
 */
export class Authenticator {
  constructor(
    private readonly users: UserDirectory,
    private readonly passwords: PasswordVerifier,
    private readonly extraGroups: Readonly<Record<string, readonly string[]>>,
    private readonly tokens: { verifier: TokenVerifier; own: boolean } | undefined,
    private readonly sessions?: SessionStore,
  ) {}

  async authenticate(authorization: string | undefined, address: string, session?: PresentedSession): Promise<Authentication> {
    const credentials = parseAuthorization(authorization);
    if (credentials === undefined) return (session && this.session(session)) ?? { identity: ANONYMOUS };
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

  /** The caller a session cookie names, while the session lives and its user keeps the password it signed in with. */
  session(presented: PresentedSession): Authentication | undefined {
    const session = this.sessions?.find(presented.cookie);
    if (!session) return undefined;
    const stored = this.users.lookup(session.user);
    if (!stored || !this.sessions!.current(session, stored.hash)) return undefined;
    if (presented.changes && !this.sessions!.csrfMatches(session, presented.csrf)) return { failed: 'csrf' };
    return { identity: this.user(stored.name, stored.groups), session };
  }

  private user(name: string, groups: readonly string[]): Identity {
    const all = new Set(groups);
    for (const [group, members] of Object.entries(this.extraGroups)) if (members.includes(name)) all.add(group);
    return { kind: 'user', name, groups: [...all] };
  }
}
