import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { link, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncPath, type BlobFiles } from '../blobstore/files.js';
import type { MetadataIndex } from '../db/index.js';
import { tryParseDigest, type Digest } from '../digest.js';
import { expiredTags, ruleFor, type RetentionRule } from './retention.js';

/** What the collector may remove; `gc` in the configuration. */
export interface GcPolicy {
  /** Nothing younger than this (ms) is collected. */
  gracePeriod: number;
  /** Delete manifests untagged for this long (ms), or never. */
  untaggedAfter: number | 'never';
  /** A referrer of a kept manifest is kept. */
  keepReferrers: boolean;
  retention: readonly RetentionRule[];
}

export interface RemovedTag {
  repository: string;
  tag: string;
  digest: string;
}

export interface RemovedManifest {
  repository: string;
  digest: string;
  size: number;
  /** `retention`: it lost its last tag to a retention rule in this run; `untagged`: the untagged policy. */
  reason: 'retention' | 'untagged';
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  /** Tags removed by retention rules. */
  tags: RemovedTag[];
  /** Manifests removed (their bytes live in the index, not in blob files). */
  manifests: RemovedManifest[];
  /** Blob index rows removed: unreferenced and older than the grace period. */
  blobs: { count: number; bytes: number };
  /** Blob files removed: those of the rows above plus orphans (files without a row). */
  files: { count: number; bytes: number };
  /** Bytes of blob files removed (or, in a dry run, that would be). */
  reclaimedBytes: number;
  /** Blob files in the store when the sweep looked. */
  store: { files: number; bytes: number };
  /** Set when the run stopped early because the registry is shutting down. */
  interrupted: boolean;
}

export interface RunOptions {
  dryRun?: boolean;
  /** Told when each phase starts: `index` (tags, manifests, blob rows), `sweep` (files). */
  onPhase?: (phase: 'index' | 'sweep') => void;
}

const ROLLBACK = Symbol('rollback');
/** Blob rows removed per transaction, so the write lock is never held for long. */
const BATCH = 500;

/**
 * Online mark-and-sweep over the index and the blob files. Safe while the registry
 * serves pushes and pulls, in this process or another one on the same directory:
 *
 * 1. Per repository, in one transaction: retention rules remove tags; manifests are
 *    marked from the roots (tagged, or untagged for less than the policy allows) through
 *    index children and, optionally, referrers; the unmarked ones are deleted.
 * 2. Blob rows that no manifest references, whose row and links are older than the
 *    grace period and whose file was not re-published within it are deleted with their
 *    links, in transactions that re-check all of that.
 * 3. Blob files without a row and older than the grace period are moved to trash/,
 *    checked again there (a publish that raced the move shows as a fresh mtime or a
 *    new row, and the file is put back) and removed.
 *
 * Rows go before files, so a crash leaves only orphan files (and trash), which the
 * next run removes. A dry run does steps 1 and 2 in a transaction that is rolled back
 * and counts what step 3 would remove: the same code decides both.
 */
export class Collector {
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private readonly trashDir: string;
  private readonly stmt;

  /** `now`: the time a run judges ages by (the grace period, retention, untagged policy). */
  constructor(
    private readonly files: BlobFiles,
    private readonly index: MetadataIndex,
    private readonly policy: GcPolicy,
    private readonly durable: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.trashDir = join(files.root, 'trash');
    const db = index.database;
    this.stmt = {
      repositories: db.prepare<[], { id: number; name: string }>('SELECT id, name FROM repositories ORDER BY name'),
      tags: db.prepare<[number], { name: string; digest: string; updatedAt: number }>(
        'SELECT name, digest, updated_at AS updatedAt FROM tags WHERE repo_id = ?',
      ),
      deleteTag: db.prepare('DELETE FROM tags WHERE repo_id = ? AND name = ? AND digest = ?'),
      manifests: db.prepare<
        [number],
        { id: number; digest: string; subject: string | null; size: number; since: number; tagged: number }
      >(
        `SELECT m.id, m.digest, m.subject, m.size, COALESCE(m.untagged_at, m.created_at) AS since,
                EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest) AS tagged
         FROM manifests m WHERE m.repo_id = ?`,
      ),
      children: db.prepare<[number], { id: number; digest: string }>(
        `SELECT r.manifest_id AS id, r.digest FROM manifest_refs r JOIN manifests m ON m.id = r.manifest_id
         WHERE m.repo_id = ? AND r.kind = 'manifest'`,
      ),
      deleteManifest: db.prepare('DELETE FROM manifests WHERE id = ?'),
      blobCandidates: db.prepare<[number, number], { digest: string; size: number }>(
        `SELECT b.digest, b.size FROM blobs b
         WHERE b.created_at < ?
           AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.digest = b.digest AND r.kind = 'blob')
           AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest AND l.created_at >= ?)`,
      ),
      blobStillCollectable: db.prepare<[string, number, number], { size: number }>(
        `SELECT b.size FROM blobs b
         WHERE b.digest = ? AND b.created_at < ?
           AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.digest = b.digest AND r.kind = 'blob')
           AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest AND l.created_at >= ?)`,
      ),
      deleteLinks: db.prepare('DELETE FROM repo_blobs WHERE digest = ?'),
      deleteBlob: db.prepare('DELETE FROM blobs WHERE digest = ?'),
      // Search indexes each tag name once; names no tag uses any more go.
      unusedTagNames: db.prepare('DELETE FROM tag_names WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.name = tag_names.name)'),
      hasBlob: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM blobs WHERE digest = ?'),
    };
  }

  /** Runs one collection; runs in this process never overlap (later ones wait). */
  run(options: RunOptions = {}): Promise<GcReport> {
    const next = this.queue.then(() => this.collect(options));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Stops a running sweep at the next file and waits for it. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.queue;
  }

  private async collect(options: RunOptions): Promise<GcReport> {
    const started = this.now();
    const timer = performance.now();
    const dryRun = options.dryRun ?? false;
    const report: GcReport = {
      dryRun,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      tags: [],
      manifests: [],
      blobs: { count: 0, bytes: 0 },
      files: { count: 0, bytes: 0 },
      reclaimedBytes: 0,
      store: { files: 0, bytes: 0 },
      interrupted: false,
    };
    if (this.stopping) return { ...report, interrupted: true };
    const cutoff = started - this.policy.gracePeriod;
    options.onPhase?.('index');
    let removedRows = new Set<string>();
    if (dryRun) {
      try {
        this.index.write(() => {
          removedRows = this.collectRows(started, cutoff, report);
          throw ROLLBACK;
        });
      } catch (err) {
        if (err !== ROLLBACK) throw err;
      }
    } else {
      removedRows = this.collectRows(started, cutoff, report);
      await this.emptyTrash(cutoff);
    }
    options.onPhase?.('sweep');
    await this.sweep(cutoff, report, dryRun ? removedRows : undefined);
    report.reclaimedBytes = report.files.bytes;
    report.durationMs = Math.round(performance.now() - timer);
    return report;
  }

  /** Steps 1 and 2. Returns the digests whose rows were removed. */
  private collectRows(now: number, cutoff: number, report: GcReport): Set<string> {
    for (const repo of this.stmt.repositories.all()) {
      if (this.stopping) break;
      const rule = ruleFor(this.policy.retention, repo.name);
      if (rule === undefined && this.policy.untaggedAfter === 'never') continue;
      this.index.write(() => this.collectRepository(repo.id, repo.name, rule, now, report));
    }
    this.index.write(() => this.stmt.unusedTagNames.run());
    const removed = new Set<string>();
    const candidates = this.stmt.blobCandidates.all(cutoff, cutoff);
    for (let i = 0; i < candidates.length; i += BATCH) {
      this.index.write(() => {
        for (const { digest } of candidates.slice(i, i + BATCH)) {
          const row = this.stmt.blobStillCollectable.get(digest, cutoff, cutoff);
          if (!row || this.publishedSince(digest, cutoff)) continue;
          this.stmt.deleteLinks.run(digest);
          this.stmt.deleteBlob.run(digest);
          report.blobs.count++;
          report.blobs.bytes += row.size;
          removed.add(digest);
        }
      });
    }
    return removed;
  }

  /** A re-upload re-publishes the file without changing the row: its mtime tells. */
  private publishedSince(digest: string, cutoff: number): boolean {
    const parsed = tryParseDigest(digest);
    if (!parsed) return false;
    try {
      return statSync(this.files.blobPath(parsed)).mtimeMs >= cutoff;
    } catch {
      return false;
    }
  }

  private collectRepository(repoId: number, repository: string, rule: RetentionRule | undefined, now: number, report: GcReport): void {
    const retained = new Set<string>();
    if (rule) {
      for (const tag of expiredTags(rule, this.stmt.tags.all(repoId), now)) {
        this.stmt.deleteTag.run(repoId, tag.name, tag.digest);
        report.tags.push({ repository, tag: tag.name, digest: tag.digest });
        retained.add(tag.digest);
      }
    }
    const manifests = this.stmt.manifests.all(repoId);
    if (manifests.length === 0) return;
    const untaggedCutoff =
      this.policy.untaggedAfter === 'never' ? undefined : now - Math.max(this.policy.untaggedAfter, this.policy.gracePeriod);
    const byDigest = new Map(manifests.map((m) => [m.digest, m]));
    const children = new Map<number, string[]>();
    for (const ref of this.stmt.children.all(repoId)) {
      const list = children.get(ref.id) ?? [];
      list.push(ref.digest);
      children.set(ref.id, list);
    }
    const referrers = new Map<string, string[]>();
    if (this.policy.keepReferrers) {
      for (const m of manifests) {
        if (m.subject === null) continue;
        const list = referrers.get(m.subject) ?? [];
        list.push(m.digest);
        referrers.set(m.subject, list);
      }
    }
    const expired = (m: (typeof manifests)[number]) =>
      !m.tagged && (retained.has(m.digest) || (untaggedCutoff !== undefined && m.since < untaggedCutoff));
    const kept = new Set<string>();
    const pending: string[] = [];
    const keep = (digest: string) => {
      if (!kept.has(digest) && byDigest.has(digest)) {
        kept.add(digest);
        pending.push(digest);
      }
    };
    for (const m of manifests) if (!expired(m)) keep(m.digest);
    while (pending.length > 0) {
      const digest = pending.pop()!;
      for (const child of children.get(byDigest.get(digest)!.id) ?? []) keep(child);
      for (const referrer of referrers.get(digest) ?? []) keep(referrer);
    }
    for (const m of manifests) {
      if (kept.has(m.digest)) continue;
      this.stmt.deleteManifest.run(m.id);
      report.manifests.push({
        repository,
        digest: m.digest,
        size: m.size,
        reason: retained.has(m.digest) ? 'retention' : 'untagged',
      });
    }
  }

  /** Step 3 (or, with `simulated`, what it would remove after those rows were gone). */
  private async sweep(cutoff: number, report: GcReport, simulated: Set<string> | undefined): Promise<void> {
    for await (const { path, digest } of this.blobFiles()) {
      if (this.stopping) {
        report.interrupted = true;
        return;
      }
      let size: number;
      let mtime: number;
      try {
        ({ size, mtimeMs: mtime } = await stat(path));
      } catch {
        continue;
      }
      report.store.files++;
      report.store.bytes += size;
      if (mtime >= cutoff) continue;
      const hasRow = this.stmt.hasBlob.get(digest.value) !== undefined && !simulated?.has(digest.value);
      if (hasRow) continue;
      if (simulated) {
        report.files.count++;
        report.files.bytes += size;
        continue;
      }
      const trashed = join(this.trashDir, `${digest.algorithm}-${digest.hex}-${randomUUID()}`);
      await mkdir(this.trashDir, { recursive: true });
      try {
        await rename(path, trashed);
      } catch {
        continue; // gone already (another collector)
      }
      const removed = await this.settle(trashed, digest, cutoff);
      if (removed !== undefined) {
        report.files.count++;
        report.files.bytes += removed;
      }
    }
  }

  /**
   * Decides a file in trash/: if a row exists for it or its mtime is within the grace
   * period, a publish raced the move and the file goes back (unless a newer copy is
   * already in place); otherwise it is removed. Returns the bytes removed.
   */
  private async settle(trashed: string, digest: Digest, cutoff: number): Promise<number | undefined> {
    let size: number;
    let mtime: number;
    try {
      ({ size, mtimeMs: mtime } = await stat(trashed));
    } catch {
      return undefined;
    }
    const needed = mtime >= cutoff || this.stmt.hasBlob.get(digest.value) !== undefined;
    if (needed) {
      const target = this.files.blobPath(digest);
      try {
        await mkdir(dirname(target), { recursive: true });
        await link(trashed, target);
        if (this.durable) await fsyncPath(dirname(target));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      await unlink(trashed).catch(() => undefined);
      return undefined;
    }
    try {
      await unlink(trashed);
      return size;
    } catch {
      return undefined;
    }
  }

  /** Files a crashed run left in trash/ are decided like fresh ones. */
  private async emptyTrash(cutoff: number): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.trashDir);
    } catch {
      return;
    }
    for (const name of names) {
      const match = /^([a-z0-9]+)-([0-9a-f]+)-[0-9a-f-]{36}$/.exec(name);
      const digest = match && tryParseDigest(`${match[1]}:${match[2]}`);
      if (digest) await this.settle(join(this.trashDir, name), digest, cutoff);
    }
  }

  /** Every well-formed blob file under blobs/ (anything else is left to fsck). */
  private async *blobFiles(): AsyncGenerator<{ path: string; digest: Digest }> {
    for await (const entry of walkBlobFiles(this.files.blobsDir)) {
      if (entry.digest) yield { path: entry.path, digest: entry.digest };
    }
  }
}

/** Walks blobs/<alg>/<prefix>/<hex>; `digest` is undefined for a file that is not a well-placed blob. */
export async function* walkBlobFiles(blobsDir: string): AsyncGenerator<{ path: string; digest: Digest | undefined }> {
  for (const algorithm of await readdirOrEmpty(blobsDir)) {
    for (const prefix of await readdirOrEmpty(join(blobsDir, algorithm))) {
      for (const name of await readdirOrEmpty(join(blobsDir, algorithm, prefix))) {
        const digest = tryParseDigest(`${algorithm}:${name}`);
        yield { path: join(blobsDir, algorithm, prefix, name), digest: digest && name.startsWith(prefix) && prefix.length === 2 ? digest : undefined };
      }
    }
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}
