import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { Authenticator } from './authenticate.js';
import type { Identity } from './rules.js';
import type { UserDirectory } from './users.js';

/** The web UI's session cookie. */
export const SESSION_COOKIE = 'berth_session';
/** The header a change made with the session cookie must carry, holding the session's CSRF token. */
export const CSRF_HEADER = 'x-berth-csrf';

/** A signed-in session as stored. */
export interface Session {
  user: string;
  csrf: string;
  expiresAt: number;
  /** Fingerprint of the user's password hash at sign-in. */
  credential: string;
}

/** What a request presents for session authentication. */
export interface PresentedSession {
  cookie: string | undefined;
  csrf: string | undefined;
  /** Whether the request may change anything (any method but GET and HEAD): it needs the CSRF token. */
  changes: boolean;
}

/** The session part of a request: its Cookie and X-Berth-CSRF headers, and its method. */
export function presentedSession(request: {
  method?: string | undefined;
  headers: { cookie?: string | undefined; [CSRF_HEADER]?: string | string[] | undefined };
}): PresentedSession {
  const csrf = request.headers[CSRF_HEADER];
  return {
    cookie: request.headers.cookie,
    csrf: Array.isArray(csrf) ? csrf[0] : csrf,
    // A caller that does not say its method is held to the stricter rule.
    changes: request.method !== 'GET' && request.method !== 'HEAD',
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function sameText(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Sign-in sessions of the web UI, rows in the index so that they survive restarts and can
 * be ended on the server. A session is named by 32 random bytes that only its cookie holds;
 * the index keeps their SHA-256, so reading the index gives no usable session. A session
 * ends at its expiry, when its user signs out, and when its user's password hash is no
 * longer the one it was opened with (password changed, user removed).
 */
export class SessionStore {
  private readonly stmt;

  constructor(
    db: Database.Database,
    private readonly expiryMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO sessions (id, user_name, csrf, credential, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      find: db.prepare<[string, number], { user_name: string; csrf: string; credential: string; expires_at: number }>(
        'SELECT user_name, csrf, credential, expires_at FROM sessions WHERE id = ? AND expires_at > ?',
      ),
      remove: db.prepare('DELETE FROM sessions WHERE id = ?'),
      purge: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
    };
  }

  /** Opens a session for `user`, whose password hash is `passwordHash`; the token goes into the cookie. */
  create(user: string, passwordHash: string): { token: string; session: Session } {
    const now = this.now();
    // Expired rows go as new ones come: the table holds at most one expiry's worth of sign-ins.
    this.stmt.purge.run(now);
    const token = randomBytes(32).toString('base64url');
    const session: Session = {
      user,
      csrf: randomBytes(24).toString('base64url'),
      expiresAt: now + this.expiryMs,
      credential: sha256(passwordHash),
    };
    this.stmt.insert.run(sha256(token), user, session.csrf, session.credential, now, session.expiresAt);
    return { token, session };
  }

  /** The unexpired session a Cookie header names, if any. */
  find(cookieHeader: string | undefined): Session | undefined {
    const token = sessionToken(cookieHeader);
    if (token === undefined) return undefined;
    const row = this.stmt.find.get(sha256(token), this.now());
    return row && { user: row.user_name, csrf: row.csrf, expiresAt: row.expires_at, credential: row.credential };
  }

  /** Whether the session was opened with this password hash (the user's current one). */
  current(session: Session, passwordHash: string): boolean {
    return sameText(session.credential, sha256(passwordHash));
  }

  csrfMatches(session: Session, header: string | undefined): boolean {
    return sameText(session.csrf, header);
  }

  /** Ends the session a Cookie header names (nothing if it names none). */
  revoke(cookieHeader: string | undefined): void {
    const token = sessionToken(cookieHeader);
    if (token !== undefined) this.stmt.remove.run(sha256(token));
  }

  get expirySeconds(): number {
    return Math.floor(this.expiryMs / 1000);
  }
}

function sessionToken(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined || !cookieHeader.includes(SESSION_COOKIE)) return undefined;
  const token = parseCookie(cookieHeader)[SESSION_COOKIE];
  return token === undefined || token === '' ? undefined : token;
}

/** Set-Cookie for a new session: HttpOnly, SameSite=Strict, Secure when the request came over TLS. */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return stringifySetCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', secure, maxAge: maxAgeSeconds });
}

/** Set-Cookie that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return stringifySetCookie(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'strict', path: '/', secure, maxAge: 0 });
}

/**
 * Signing in and out of the web UI: the password is checked by the Authenticator, so
 * failed sign-ins count towards the same per-address and per-user limit as failed HTTP
 * Basic logins.
 */
export class SignIn {
  constructor(
    readonly store: SessionStore,
    private readonly authenticator: Authenticator,
    private readonly users: UserDirectory,
  ) {}

  /** A new session, or undefined for a wrong name or password. Throws 429 while the address or user is locked out. */
  async signIn(name: string, password: string, address: string): Promise<{ token: string; session: Session; identity: Identity } | undefined> {
    const identity = await this.authenticator.password(name, password, address);
    const stored = identity && this.users.lookup(name);
    if (!identity || !stored) return undefined;
    return { ...this.store.create(name, stored.hash), identity };
  }

  /** The live session a request's cookie names, with its user as the Authenticator sees them. */
  current(cookieHeader: string | undefined): { session: Session; identity: Identity } | undefined {
    const result = this.authenticator.session({ cookie: cookieHeader, csrf: undefined, changes: false });
    return result && 'session' in result && result.session ? { session: result.session, identity: result.identity } : undefined;
  }

  signOut(cookieHeader: string | undefined): void {
    this.store.revoke(cookieHeader);
  }
}
