/**
 * The time a registry judges ages by (see AppOptions.clock), under the test's control:
 * the real time, moved ahead by what the test adds, or stopped where the test sets it.
 * Collections, idle sessions and cached tags then look as old as the test says, without
 * the test waiting (and without a loaded machine stretching what "quickly" means).
 */
export class TestClock {
  private time: number | undefined;
  private offset = 0;
  readonly now = (): number => this.time ?? Date.now() + this.offset;

  /** From now on, `ms` later than it would have been (the clock keeps running). */
  advance(ms: number): void {
    if (this.time === undefined) this.offset += ms;
    else this.time += ms;
  }

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
