import { oci } from '../errors.js';

interface Window {
  failures: number;
  resetAt: number;
}

/**
 * Failed-login rate limiting, per client address and per user name: after `maxFailures`
 * failures within `windowMs` the address (or the user) is refused with 429 until the
 * window ends, without the password even being checked. Counting per key means an
 * attacker only ever locks out its own address and the accounts it attacks.
 */
export class LoginThrottle {
  private readonly byAddress = new Map<string, Window>();
  private readonly byUser = new Map<string, Window>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws 429 TOOMANYREQUESTS (with Retry-After) while the address or the user is locked out. */
  check(address: string, user: string | undefined): void {
    const wait = Math.max(this.lockedFor(this.byAddress, address), user === undefined ? 0 : this.lockedFor(this.byUser, user));
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw oci('TOOMANYREQUESTS', 'too many failed login attempts; try again later', { retryAfterSeconds: seconds }, {
        headers: { 'Retry-After': String(seconds) },
      });
    }
  }

  failure(address: string, user: string | undefined): void {
    this.count(this.byAddress, address);
    if (user !== undefined) this.count(this.byUser, user);
  }

  private lockedFor(map: Map<string, Window>, key: string): number {
    const window = map.get(key);
    const now = this.now();
    if (!window || window.resetAt <= now || window.failures < this.maxFailures) return 0;
    return window.resetAt - now;
  }

  private count(map: Map<string, Window>, key: string): void {
    const now = this.now();
    const window = map.get(key);
    if (!window || window.resetAt <= now) {
      if (map.size >= 10_000) this.sweep(map, now);
      map.set(key, { failures: 1, resetAt: now + this.windowMs });
    } else {
      window.failures++;
    }
  }

  /** Forgets finished windows, so many addresses or names cannot grow the maps without bound. */
  private sweep(map: Map<string, Window>, now: number): void {
    for (const [key, window] of map) if (window.resetAt <= now) map.delete(key);
  }
}
