import { monitorEventLoopDelay } from 'node:perf_hooks';

/** The histogram's sampling period; it counts as delay in every sample, so it is taken off. */
const RESOLUTION_MS = 10;

/**
 * Whether the event loop is saturated: the mean delay of its timers over the last sample
 * period beyond `maxDelayMs`. Nothing else is sampled; in particular not the memory, whose
 * resident size is read from a file, which fails (EMFILE) while connections hold every
 * file descriptor the process may open.
 */
export class LoopMonitor {
  private readonly histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private readonly timer: NodeJS.Timeout;
  private delayMs = 0;

  constructor(
    private readonly maxDelayMs: number,
    intervalMs = 1000,
  ) {
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  get overloaded(): boolean {
    return this.delayMs > this.maxDelayMs;
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private sample(): void {
    const mean = this.histogram.mean / 1e6 - RESOLUTION_MS;
    // No sample at all: the loop was blocked for the whole period.
    this.delayMs = Number.isNaN(mean) ? Infinity : Math.max(0, mean);
    this.histogram.reset();
  }
}
