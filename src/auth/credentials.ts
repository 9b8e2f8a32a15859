import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadBcrypt, type StoredUser, type UserDirectory } from './users.js';

export type Credentials =
  | { scheme: 'basic'; user: string; password: string }
  | { scheme: 'bearer'; token: string }
  | { scheme: 'invalid' };

/**
 * Parses an Authorization header; undefined when there is none. Basic with an empty user
 * and password (what containers/image sends when it has no credentials) is none too.
 */
export function parseAuthorization(header: string | undefined): Credentials | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match) return { scheme: 'invalid' };
  const scheme = match[1]!.toLowerCase();
  if (scheme === 'bearer') return { scheme: 'bearer', token: match[2]! };
  if (scheme !== 'basic') return { scheme: 'invalid' };
  const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
  if (decoded === ':') return undefined;
  const colon = decoded.indexOf(':');
  if (colon <= 0) return { scheme: 'invalid' };
  return { scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The hash of a random string nobody kept: unknown users cost as much time as known ones. */
const DUMMY_HASH = '$2b$11$BnFhHjuDmsZ0iur2dW/c3Olrzf7tnBFYWgcSC4ac05eXtOGELc7yK';
const CACHE_TTL_MS = 5 * 60_000;

/**
 * Checks passwords against the users' bcrypt hashes. bcrypt is slow on purpose, and HTTP
 * Basic sends the password with every request, so a successful check is remembered for a
 * few minutes as an HMAC (with a key that lives only in this process) next to the hash it
 * was checked against: a changed password or a removed user is never served from memory.
 * Every comparison is constant-time.
 */
export class PasswordVerifier {
  private readonly key = randomBytes(32);
  private readonly verified = new Map<string, { hash: string; mac: Buffer; expires: number }>();

  constructor(private readonly users: UserDirectory) {}

  async verify(name: string, password: string): Promise<StoredUser | undefined> {
    const user = this.users.lookup(name);
    const mac = createHmac('sha256', this.key).update(name).update('\0').update(password).digest();
    const cached = this.verified.get(name);
    if (user && cached && cached.hash === user.hash && cached.expires > Date.now() && timingSafeEqual(cached.mac, mac)) {
      return user;
    }
    const ok = await (await loadBcrypt()).compare(password, user?.hash ?? DUMMY_HASH);
    if (!ok || !user) return undefined;
    if (this.verified.size >= 10_000) this.verified.clear();
    this.verified.set(name, { hash: user.hash, mac, expires: Date.now() + CACHE_TTL_MS });
    return user;
  }
}
