import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { oci } from '../errors.js';
import type { LoginThrottle } from './throttle.js';
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
 * bcrypt runs on libuv's thread pool, which Berth's file reads and writes share: at most
 * this many checks run at once, half of the pool's four threads, so a flood of logins can
 * delay other logins but never downloads and uploads.
 */
const CONCURRENT_CHECKS = 2;
/** Checks waiting beyond this many are refused with 503 rather than queued without bound. */
const MAX_WAITING_CHECKS = 256;

/**
 * Checks passwords against the users' bcrypt hashes, off the event loop. bcrypt is slow on
 * purpose, and HTTP Basic sends the password with every request, so a successful check is
 * remembered for a few minutes as an HMAC (with a key that lives only in this process)
 * next to the hash it was checked against: a changed password or a removed user is never
 * served from memory. Identical checks in progress (a client's parallel requests with the
 * same credentials) share one. Every other check is counted by the login throttle before
 * it starts. Every comparison is constant-time.
 */
export class PasswordVerifier {
  private readonly key = randomBytes(32);
  private readonly verified = new Map<string, { hash: string; mac: Buffer; expires: number }>();
  private readonly inProgress = new Map<string, Promise<StoredUser | undefined>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly users: UserDirectory,
    private readonly throttle: LoginThrottle,
  ) {}

  /**
   * The user, if `password` is theirs. Throws 429 while the address or the user is locked
   * out or has too many checks in progress (the password is then not checked at all), and
   * 503 while too many checks are waiting for their turn.
   */
  async check(name: string, password: string, address: string): Promise<StoredUser | undefined> {
    this.throttle.check(address, name);
    const user = this.users.lookup(name);
    const mac = createHmac('sha256', this.key).update(name).update('\0').update(password).digest();
    const cached = this.verified.get(name);
    if (user && cached && cached.hash === user.hash && cached.expires > Date.now() && timingSafeEqual(cached.mac, mac)) {
      return user;
    }
    const key = `${name}\0${mac.toString('base64')}`;
    const shared = this.inProgress.get(key);
    if (shared) return shared;
    const settle = this.throttle.reserve(address, name);
    const check = this.bcrypt(password, user?.hash ?? DUMMY_HASH).then(
      (ok) => {
        settle(!ok || !user);
        if (!ok || !user) return undefined;
        if (this.verified.size >= 10_000) this.verified.clear();
        this.verified.set(name, { hash: user.hash, mac, expires: Date.now() + CACHE_TTL_MS });
        return user;
      },
      (err: unknown) => {
        settle(false);
        throw err;
      },
    );
    this.inProgress.set(key, check);
    return check.finally(() => this.inProgress.delete(key));
  }

  /** One bcrypt comparison, on the thread pool, when one of the CONCURRENT_CHECKS slots is free. */
  private async bcrypt(password: string, hash: string): Promise<boolean> {
    if (this.running < CONCURRENT_CHECKS) {
      this.running++;
    } else {
      if (this.waiting.length >= MAX_WAITING_CHECKS) {
        throw oci('UNAVAILABLE', 'too many logins are being checked; retry later', undefined, { headers: { 'Retry-After': '5' } });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    try {
      return await (await loadBcrypt()).verify(password, hash);
    } finally {
      // The slot goes to the next waiting check, if any.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
