import { randomUUID } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../config.js';

/** Who holds a data directory, as recorded next to its lock. */
interface Holder {
  pid: number;
  host: string;
  since: string;
  /** Tells this holder's record from a later one's. */
  nonce: string;
}

/**
 * One server per data directory. A starting server empties tmp/ and reconciles upload
 * files with the index, which would break the uploads of another server on the same
 * directory, so the second one refuses to start.
 *
 * The lock is an exclusive lock the operating system holds for this process on
 * `serve.lock`, a small SQLite database opened with `locking_mode=EXCLUSIVE`: the kernel
 * drops it when the process ends, however it ends (kill -9 included), so there is never
 * a stale lock to clear. SQLite is already how Berth talks to the disk, and Node has no
 * flock of its own. The lock does not cover what a held lock cannot show, so the holder
 * (pid, host, start time) is recorded in `serve.lock.json` for the refusal to name.
 * The maintenance commands (gc, fsck, du, user, repo) take no lock: they work beside a
 * server through the index's own locking.
 */
export class InstanceLock {
  private constructor(
    private readonly db: Database.Database,
    private readonly holderFile: string,
    private readonly nonce: string,
  ) {}

  /** Takes the lock on `root`; a ConfigError naming the holder if another process has it. */
  static acquire(root: string): InstanceLock {
    const lockFile = join(root, 'serve.lock');
    const holderFile = `${lockFile}.json`;
    // No busy timeout: a held lock is an answer, not something to wait for.
    const db = new Database(lockFile, { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // A write takes the exclusive lock, which this locking mode keeps until close.
      db.exec('CREATE TABLE IF NOT EXISTS lock (id INTEGER PRIMARY KEY CHECK (id = 1), taken_at INTEGER NOT NULL)');
      db.prepare('INSERT OR REPLACE INTO lock (id, taken_at) VALUES (1, ?)').run(Date.now());
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new ConfigError(inUse(root, readHolder(holderFile)));
      throw err;
    }
    const holder: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), nonce: randomUUID() };
    const temp = `${holderFile}.${holder.nonce}`;
    writeFileSync(temp, `${JSON.stringify(holder)}\n`);
    renameSync(temp, holderFile);
    return new InstanceLock(db, holderFile, holder.nonce);
  }

  /** Releases the lock (and forgets the holder record, if it is still this process's). */
  release(): void {
    if (!this.db.open) return;
    if (readHolder(this.holderFile)?.nonce === this.nonce) rmSync(this.holderFile, { force: true });
    this.db.close();
  }
}

function readHolder(file: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

function inUse(root: string, holder: Holder | undefined): string {
  const who = holder
    ? `another berth serve (pid ${holder.pid} on host ${holder.host}, running since ${holder.since})`
    : 'another berth serve';
  return `storage.root ${root} is in use by ${who}: stop that one first, or give this server its own storage.root`;
}
