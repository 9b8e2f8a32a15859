/**
 * What pulls and tag watchers read again and again, kept in memory: manifests by tag and
 * by digest, the sizes of repositories' blobs, and tag lists. An entry is only as good
 * as the database it was read from, so the cache empties whenever the database changes.
 * This process's own changes call `clear` as they commit, so they show at once. Another
 * process's commits (`berth gc`, `berth fsck --repair` or `berth repo rm` run beside the
 * server) show through SQLite's `data_version`, read at most once per
 * OTHER_PROCESS_LAG_MS: it takes and releases the database's locks, three system calls
 * that cut the cached pull rate by a quarter when made for every lookup. Within its byte
 * budget, the least recently used entries go first.
 */
export class HotCache {
  private readonly entries = new Map<string, { value: unknown; bytes: number }>();
  private bytes = 0;
  private version: number;
  private nextCheck = 0;

  /** `dataVersion` reads `PRAGMA data_version` on the connection the cached rows come from. */
  constructor(
    private readonly dataVersion: () => number,
    private readonly maxBytes: number,
  ) {
    this.version = dataVersion();
  }

  /**
   * The cached value for `key`, or else `load()`'s, cached when defined. `bytes` estimates
   * what the value holds on to (the entry's own overhead is added here).
   */
  read<T>(key: string, load: () => T | undefined, bytes: (value: T) => number): T | undefined {
    if (this.maxBytes === 0) return load();
    const now = performance.now();
    if (now >= this.nextCheck) {
      this.nextCheck = now + OTHER_PROCESS_LAG_MS;
      const version = this.dataVersion();
      if (version !== this.version) {
        this.clear();
        this.version = version;
      }
    }
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Re-inserting keeps the Map's order from least to most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value as T;
    }
    const value = load();
    if (value !== undefined) this.add(key, value, bytes(value) + 2 * key.length + ENTRY_OVERHEAD);
    return value;
  }

  /** Forgets everything; call it after every commit that changes what the cache holds. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private add(key: string, value: unknown, bytes: number): void {
    if (bytes > this.maxBytes) return;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes + bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
  }
}

/** How long another process's commit may go unseen: less than such a command takes to exit. */
export const OTHER_PROCESS_LAG_MS = 1;

/** Roughly what a Map entry, its wrapper object and a record's fields cost besides the key and payload. */
const ENTRY_OVERHEAD = 200;
