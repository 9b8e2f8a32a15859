import { oci } from '../errors.js';

interface Window {
  /** Failed attempts within the window. */
  failures: number;
  /** Attempts being verified now: each may still turn out a failure. */
  pending: number;
  resetAt: number;
}

/** Ends an attempt reserved with `reserve`: a failure stays counted, anything else is released. */
export type Settle = (failed: boolean) => void;

/**
 * Failed-login rate limiting, per client address and per user name: after `maxFailures`
 * failures within `windowMs` the address (or the user) is refused with 429 until the
 * window ends, without the password even being checked. Counting per key means an
 * attacker only ever locks out its own address and the accounts it attacks.
 *
 * An attempt counts from the moment its check begins (`reserve`): while checks are in
 * progress, each counts as a failure until it turns out right. Parallel guesses are thus
 * limited exactly as sequential ones, and at most `maxFailures` checks per address and per
 * user are ever in progress at once.
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
    const now = this.now();
    const wait = Math.max(this.lockedFor(this.byAddress.get(address), now), user === undefined ? 0 : this.lockedFor(this.byUser.get(user), now));
    if (wait > 0) throw tooMany(wait);
  }

  /**
   * Counts an attempt before its password is checked; the caller settles it once the
   * check is done. Throws 429 when the address or the user has no attempt left in its
   * window, counting those still being checked.
   */
  reserve(address: string, user: string): Settle {
    this.check(address, user);
    const now = this.now();
    const windows = [this.window(this.byAddress, address, now), this.window(this.byUser, user, now)];
    if (windows.some((w) => w.failures + w.pending >= this.maxFailures)) {
      // Only checks in progress fill the window: they end within moments.
      throw tooMany(1000, 'too many login attempts in progress; try again later');
    }
    for (const w of windows) w.pending++;
    let settled = false;
    return (failed) => {
      if (settled) return;
      settled = true;
      const at = this.now();
      for (const w of windows) {
        w.pending--;
        if (!failed) continue;
        // A check that outlived its window counts in a fresh one.
        if (w.resetAt <= at) {
          w.failures = 0;
          w.resetAt = at + this.windowMs;
        }
        w.failures++;
      }
    };
  }

  private lockedFor(window: Window | undefined, now: number): number {
    if (!window || window.resetAt <= now || window.failures < this.maxFailures) return 0;
    return window.resetAt - now;
  }

  /** The key's current window, a fresh one if it had none or it ended. */
  private window(map: Map<string, Window>, key: string, now: number): Window {
    const current = map.get(key);
    if (current && current.resetAt > now) return current;
    if (current) {
      current.failures = 0;
      current.resetAt = now + this.windowMs;
      return current;
    }
    if (map.size >= 10_000) this.sweep(map, now);
    const fresh = { failures: 0, pending: 0, resetAt: now + this.windowMs };
    map.set(key, fresh);
    return fresh;
  }

  /** Forgets finished windows, so many addresses or names cannot grow the maps without bound. */
  private sweep(map: Map<string, Window>, now: number): void {
    for (const [key, window] of map) if (window.resetAt <= now && window.pending === 0) map.delete(key);
  }
}

function tooMany(waitMs: number, message = 'too many failed login attempts; try again later') {
  const seconds = Math.ceil(waitMs / 1000);
  return oci('TOOMANYREQUESTS', message, { retryAfterSeconds: seconds }, {
    headers: { 'Retry-After': String(seconds) },
  });
}
