import type { BlobFiles } from '../blobstore/files.js';
import type { Config } from '../config.js';
import type { MetadataIndex } from '../db/index.js';
import { Collector, type GcReport, type RunOptions } from './collector.js';
import { RepositoryRemover, type RepositoryRemoval } from './repositories.js';
import { UsageQueries, type RepositoryUsage, type UsageTotals } from './usage.js';

export interface UsageReport {
  repositories: RepositoryUsage[];
  totals: UsageTotals & {
    /** Blob files on disk (including orphans) and their bytes. */
    files: number;
    fileBytes: number;
    /** What a collection run now would remove from disk (a dry run's reclaimedBytes). */
    reclaimableBytes: number;
  };
}

interface Logger {
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * The storage lifecycle as the server and the CLI use it: collection (on demand and on a
 * schedule), accounting and repository removal over one store and index.
 */
export class Lifecycle {
  readonly collector: Collector;
  private readonly usageQueries: UsageQueries;
  private readonly remover: RepositoryRemover;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(report: GcReport | undefined) => void> = [];

  /** `now`: the clock collections judge ages by (tests pass their own). */
  constructor(files: BlobFiles, index: MetadataIndex, config: Config, now: () => number = Date.now) {
    this.collector = new Collector(files, index, config.gc, config.storage.fsync, now);
    this.usageQueries = new UsageQueries(index);
    this.remover = new RepositoryRemover(index);
  }

  collect(options: RunOptions = {}): Promise<GcReport> {
    const run = this.collector.run(options);
    if (!options.dryRun) {
      run.then(
        (report) => this.listeners.forEach((listener) => listener(report)),
        () => this.listeners.forEach((listener) => listener(undefined)),
      );
    }
    return run;
  }

  /** Calls `listener` after every collection that is not a dry run (undefined: it failed). */
  onCollected(listener: (report: GcReport | undefined) => void): void {
    this.listeners.push(listener);
  }

  /** Accounting for every repository (or one; undefined if unknown) with the reclaimable bytes. */
  async usage(repository?: string): Promise<UsageReport | undefined> {
    const plan = await this.collector.run({ dryRun: true });
    const usage = this.usageQueries.usage(repository);
    if (!usage) return undefined;
    return {
      repositories: usage.repositories,
      totals: { ...usage.totals, files: plan.store.files, fileBytes: plan.store.bytes, reclaimableBytes: plan.reclaimedBytes },
    };
  }

  removeRepository(name: string, options: { dryRun?: boolean } = {}): RepositoryRemoval | undefined {
    return this.remover.remove(name, options);
  }

  /** Collects every `interval` ms (0: never) in the background, unless `paused()`, logging what each run removed. */
  schedule(interval: number, log: Logger, paused: () => boolean = () => false): void {
    if (interval <= 0) return;
    this.timer = setInterval(() => {
      if (paused()) return;
      this.collect().then(
        (report) => {
          if (report.manifests.length + report.tags.length + report.files.count + report.blobs.count > 0) {
            log.info(
              {
                tags: report.tags.length,
                manifests: report.manifests.length,
                blobs: report.blobs.count,
                files: report.files.count,
                reclaimedBytes: report.reclaimedBytes,
                durationMs: report.durationMs,
              },
              'garbage collected',
            );
          }
        },
        (err: unknown) => log.error({ err }, 'garbage collection failed'),
      );
    }, interval);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a running collection (which stops at its next file). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.collector.close();
  }
}
