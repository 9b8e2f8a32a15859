/**
 * The time a registry's storage lifecycle judges ages by, under the test's control:
 * the real time until the test sets one. Collections then see every blob, row and tag
 * as old as that time makes it, without the test waiting for a grace period to pass.
 */
export class TestClock {
  private time: number | undefined;
  readonly now = (): number => this.time ?? Date.now();

  /** Stops the clock at `ms` from the real time now. */
  later(ms: number): void {
    this.time = Date.now() + ms;
  }

  /** Stops the clock at `time` (ms since the epoch). */
  set(time: number): void {
    this.time = time;
  }
}

export const HOUR = 3_600_000;
