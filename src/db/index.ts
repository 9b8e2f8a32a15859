import Database from 'better-sqlite3';
import type { LayerContents } from '../blobstore/layer-thread.js';
import { HotCache } from './hot-cache.js';
import { ImageRows, type ImageRecord } from './images.js';
import { WalSync } from './wal-sync.js';
import { MIGRATIONS } from './schema.js';

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  subject: string | null;
  /** JSON text of the manifest's annotations, for referrers listings. */
  annotations: string | null;
  size: number;
  content: Buffer;
}

export interface ManifestPut extends ManifestRecord {
  blobs: readonly string[];
  children: readonly string[];
}

export interface ReferrerRow {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  annotations: string | null;
}

export interface UploadRow {
  id: string;
  repo: string;
  createdAt: number;
  updatedAt: number;
  /** Bytes of data the session was last known to hold. */
  received: number;
}

interface ManifestRow {
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject: string | null;
  annotations: string | null;
  size: number;
  content: Buffer;
}

/**
 * The metadata index: repositories, blob links, manifests, tags and upload sessions
 * as SQLite rows. Every multi-row change is one transaction, begun IMMEDIATE: another
 * process on the same file (`berth gc`, `berth fsck`) may commit between a deferred
 * transaction's first read and its first write, which SQLite answers with SQLITE_BUSY
 * at once instead of waiting. All statements are prepared once.
 */
export class MetadataIndex {
  /** Runs migrations; serves modules that keep their own statements (`database`), synchronous=FULL. */
  private readonly db: Database.Database;
  /**
   * The connection behind every statement here, with synchronous=NORMAL: commits write
   * the WAL without an fsync, and the methods that must be durable before they return
   * (blob, manifest and tag changes) sync the WAL file themselves through `wal`, off
   * the event loop and shared by every commit waiting at the same time (group commit).
   * Upload-session rows only need to survive a process crash, which the WAL gives.
   */
  private readonly fast: Database.Database;
  private readonly wal: WalSync | undefined;
  /** Manifests, blob sizes and tag lists that clients read, cleared by every commit below that changes them. */
  private readonly hot: HotCache;
  /** What each manifest is and what each blob holds uncompressed (src/db/images.ts), on this index's connection. */
  readonly images: ImageRows;
  private readonly stmt;

  /** `cacheBytes`: memory for hot manifests, blob sizes and tag lists (0: none), for a serving process. */
  constructor(file: string, options: { durable: boolean; cacheBytes?: number }) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.durable ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.fast = new Database(file);
    this.fast.pragma('synchronous = NORMAL');
    this.fast.pragma('foreign_keys = ON');
    this.fast.pragma('busy_timeout = 5000');
    this.wal = options.durable ? new WalSync(`${file}-wal`) : undefined;
    const db = this.fast;
    const dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.hot = new HotCache(() => dataVersion.get()!, options.cacheBytes ?? 0);
    this.images = new ImageRows(db);
    this.stmt = {
      repoId: db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE name = ?'),
      insertRepo: db.prepare('INSERT OR IGNORE INTO repositories (name, created_at) VALUES (?, ?)'),
      // Listings pluck the names, without a row object each: several times faster for long ones.
      listRepos: db.prepare<[string, number], string>('SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?').pluck(),
      blob: db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?'),
      insertBlob: db.prepare('INSERT OR IGNORE INTO blobs (digest, size, created_at) VALUES (?, ?, ?)'),
      insertLayerBlob: db.prepare(
        `INSERT INTO blobs (digest, size, created_at, layer_format, diff_id, uncompressed_size, layer_error) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET layer_format = excluded.layer_format, diff_id = excluded.diff_id,
           uncompressed_size = excluded.uncompressed_size, layer_error = excluded.layer_error
         WHERE blobs.layer_format IS NULL`,
      ),
      linkedBlob: db.prepare<[string, string], { size: number }>(
        `SELECT b.size FROM repo_blobs l JOIN repositories r ON r.id = l.repo_id JOIN blobs b ON b.digest = l.digest
         WHERE r.name = ? AND l.digest = ?`,
      ),
      link: db.prepare('INSERT OR IGNORE INTO repo_blobs (repo_id, digest, created_at) VALUES (?, ?, ?)'),
      linkingRepos: db.prepare<[string], { name: string }>(
        'SELECT r.name FROM repo_blobs l JOIN repositories r ON r.id = l.repo_id WHERE l.digest = ?',
      ),
      unlink: db.prepare('DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?'),
      manifestByDigest: db.prepare<[string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.artifact_type, m.subject, m.annotations, m.size, m.content
         FROM repositories r JOIN manifests m ON m.repo_id = r.id WHERE r.name = ? AND m.digest = ?`,
      ),
      manifestByTag: db.prepare<[string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.artifact_type, m.subject, m.annotations, m.size, m.content
         FROM repositories r JOIN tags t ON t.repo_id = r.id JOIN manifests m ON m.repo_id = r.id AND m.digest = t.digest
         WHERE r.name = ? AND t.name = ?`,
      ),
      manifestId: db.prepare<[number, string], { id: number }>('SELECT id FROM manifests WHERE repo_id = ? AND digest = ?'),
      insertManifest: db.prepare(
        `INSERT INTO manifests (repo_id, digest, media_type, artifact_type, subject, annotations, size, content, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertRef: db.prepare('INSERT OR IGNORE INTO manifest_refs (manifest_id, digest, kind) VALUES (?, ?, ?)'),
      deleteManifest: db.prepare('DELETE FROM manifests WHERE repo_id = ? AND digest = ?'),
      upsertTag: db.prepare(
        `INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      ),
      deleteTag: db.prepare('DELETE FROM tags WHERE repo_id = ? AND name = ?'),
      deleteTagsOf: db.prepare('DELETE FROM tags WHERE repo_id = ? AND digest = ?'),
      listTags: db
        .prepare<[number, string, number], string>('SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?')
        .pluck(),
      referrers: db.prepare<
        [number, string],
        { digest: string; media_type: string; artifact_type: string | null; size: number; annotations: string | null }
      >(
        `SELECT digest, media_type, artifact_type, size, annotations FROM manifests
         WHERE repo_id = ? AND subject = ? ORDER BY created_at, digest`,
      ),
      insertUpload: db.prepare('INSERT INTO uploads (id, repo, created_at, updated_at) VALUES (?, ?, ?, ?)'),
      upload: db.prepare<[string], { id: string; repo: string; created_at: number; updated_at: number; received: number }>(
        'SELECT id, repo, created_at, updated_at, received FROM uploads WHERE id = ?',
      ),
      touchUpload: db.prepare('UPDATE uploads SET updated_at = ?, received = COALESCE(?, received) WHERE id = ?'),
      deleteUpload: db.prepare('DELETE FROM uploads WHERE id = ?'),
      staleUploads: db.prepare<[number], { id: string }>('SELECT id FROM uploads WHERE updated_at < ?'),
      uploadIds: db.prepare<[], { id: string }>('SELECT id FROM uploads'),
    };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i]!);
        this.db.pragma(`user_version = ${i + 1}`);
      })();
    }
  }

  /** Closes the connections; call it when no write is waiting for its flush. */
  close(): void {
    this.wal?.close();
    this.fast.close();
    this.db.close();
  }

  /**
   * After a commit that changes blobs, links, manifests or tags: the cache forgets what it
   * held, and every commit so far becomes durable (a no-op without durability).
   */
  private async committed(): Promise<void> {
    this.hot.clear();
    await this.wal?.flush();
  }

  /**
   * The connection, for modules that keep their own statements over the same schema.
   * They change manifests, tags, links or blobs only inside `write`.
   */
  get database(): Database.Database {
    return this.db;
  }

  /**
   * Runs `change` as one write transaction on `database`, then empties the cache of hot
   * rows, so that the next pull sees the change.
   */
  write<T>(change: () => T): T {
    try {
      return this.db.transaction(change).immediate();
    } finally {
      this.hot.clear();
    }
  }

  repositoryId(name: string): number | undefined {
    return this.stmt.repoId.get(name)?.id;
  }

  private ensureRepository(name: string, now: number): number {
    this.stmt.insertRepo.run(name, now);
    return this.stmt.repoId.get(name)!.id;
  }

  listRepositories(after: string, limit: number): string[] {
    return this.stmt.listRepos.all(after, limit);
  }

  /** Size of a blob in the global store, if indexed. */
  blobSize(digest: string): number | undefined {
    return this.stmt.blob.get(digest)?.size;
  }

  /** Size of a blob if `repo` may serve it. */
  linkedBlobSize(repo: string, digest: string): number | undefined {
    return this.hot.read(`b\n${repo}\n${digest}`, () => this.stmt.linkedBlob.get(repo, digest)?.size, () => 0);
  }

  /**
   * Records a blob whose file is already durable in the store and links it into `repo`;
   * with `contents`, what it holds uncompressed, when that is known already; with `upload`,
   * the session it came from ends in the same transaction.
   */
  async addBlob(repo: string, digest: string, size: number, options: { contents?: LayerContents; upload?: string } = {}): Promise<void> {
    const now = Date.now();
    this.fast.transaction(() => {
      const { contents, upload } = options;
      if (contents) {
        this.stmt.insertLayerBlob.run(digest, size, now, contents.format, contents.digest ?? null, contents.size ?? null, contents.error ?? null);
      } else {
        this.stmt.insertBlob.run(digest, size, now);
      }
      this.stmt.link.run(this.ensureRepository(repo, now), digest, now);
      if (upload !== undefined) this.stmt.deleteUpload.run(upload);
    }).immediate();
    await this.committed();
  }


  /**
   * Cross-repository mount: links `digest` into `repo` if it is in the store (when
   * `from` is undefined) or linked in `from`. Check and link are one transaction.
   * With `readable`, a mount without `from` needs a repository linking the blob that
   * passes it (the caller may read it). Returns the blob's size, or undefined when there
   * was nothing to mount.
   */
  async mountBlob(
    repo: string,
    digest: string,
    from: string | undefined,
    readable?: (repository: string) => boolean,
  ): Promise<number | undefined> {
    const now = Date.now();
    const size = this.fast.transaction(() => {
      const visible = (name: string) => readable === undefined || readable(name);
      const size =
        from !== undefined
          ? this.linkedBlobSize(from, digest)
          : readable === undefined || this.stmt.linkingRepos.all(digest).some((r) => visible(r.name))
            ? this.blobSize(digest)
            : undefined;
      if (size !== undefined) this.stmt.link.run(this.ensureRepository(repo, now), digest, now);
      return size;
    }).immediate();
    if (size === undefined) return undefined;
    await this.committed();
    return size;
  }

  async unlinkBlob(repoId: number, digest: string): Promise<boolean> {
    const unlinked = this.stmt.unlink.run(repoId, digest).changes > 0;
    await this.committed();
    return unlinked;
  }

  manifestByDigest(repo: string, digest: string): ManifestRecord | undefined {
    return this.hot.read(`m\n${repo}\n${digest}`, () => toRecord(this.stmt.manifestByDigest.get(repo, digest)), recordBytes);
  }

  manifestByTag(repo: string, tag: string): ManifestRecord | undefined {
    return this.hot.read(`t\n${repo}\n${tag}`, () => toRecord(this.stmt.manifestByTag.get(repo, tag)), recordBytes);
  }



  hasManifest(repoId: number, digest: string): boolean {
    return this.stmt.manifestId.get(repoId, digest) !== undefined;
  }

  /**
   * Stores a manifest, its references, what it is (`image`) and optionally a tag in one
   * transaction. `check` runs inside it, so what it verifies cannot change before the commit.
   */
  async putManifest(
    repo: string,
    manifest: ManifestPut,
    tag: string | undefined,
    check: (repoId: number | undefined) => void,
    image?: ImageRecord,
  ): Promise<void> {
    const now = Date.now();
    this.fast.transaction(() => {
      check(this.repositoryId(repo));
      const repoId = this.ensureRepository(repo, now);
      const existing = this.stmt.manifestId.get(repoId, manifest.digest)?.id;
      if (existing !== undefined) {
        if (image) this.images.put(existing, image);
      } else {
        const { lastInsertRowid } = this.stmt.insertManifest.run(
          repoId,
          manifest.digest,
          manifest.mediaType,
          manifest.artifactType,
          manifest.subject,
          manifest.annotations,
          manifest.size,
          manifest.content,
          now,
        );
        for (const digest of manifest.blobs) this.stmt.insertRef.run(lastInsertRowid, digest, 'blob');
        for (const digest of manifest.children) this.stmt.insertRef.run(lastInsertRowid, digest, 'manifest');
        if (image) this.images.put(Number(lastInsertRowid), image);
      }
      if (tag !== undefined) this.stmt.upsertTag.run(repoId, tag, manifest.digest, now);
    }).immediate();
    await this.committed();
  }

  /** Deletes a manifest and every tag pointing at it. */
  async deleteManifest(repoId: number, digest: string): Promise<boolean> {
    const deleted = this.fast.transaction(() => {
      this.stmt.deleteTagsOf.run(repoId, digest);
      return this.stmt.deleteManifest.run(repoId, digest).changes > 0;
    }).immediate();
    await this.committed();
    return deleted;
  }

  async deleteTag(repoId: number, tag: string): Promise<boolean> {
    const deleted = this.stmt.deleteTag.run(repoId, tag).changes > 0;
    await this.committed();
    return deleted;
  }

  /** Cached too: tools watching for new tags poll these lists, which may hold thousands. */
  listTags(repoId: number, after: string, limit: number): string[] {
    return this.hot.read(`l\n${repoId}\n${limit}\n${after}`, () => this.stmt.listTags.all(repoId, after, limit), namesBytes)!;
  }

  referrers(repoId: number, subject: string): ReferrerRow[] {
    return this.stmt.referrers.all(repoId, subject).map((r) => ({
      digest: r.digest,
      mediaType: r.media_type,
      artifactType: r.artifact_type,
      size: r.size,
      annotations: r.annotations,
    }));
  }

  createUpload(id: string, repo: string, now: number): void {
    this.stmt.insertUpload.run(id, repo, now, now);
  }

  getUpload(id: string): UploadRow | undefined {
    const row = this.stmt.upload.get(id);
    return row && { id: row.id, repo: row.repo, createdAt: row.created_at, updatedAt: row.updated_at, received: row.received };
  }

  /** Marks the session active at `now` and, when known, records how many bytes it holds. */
  touchUpload(id: string, now: number, received?: number): void {
    this.stmt.touchUpload.run(now, received ?? null, id);
  }

  deleteUpload(id: string): void {
    this.stmt.deleteUpload.run(id);
  }

  uploadsIdleSince(before: number): string[] {
    return this.stmt.staleUploads.all(before).map((r) => r.id);
  }

  uploadIds(): Set<string> {
    return new Set(this.stmt.uploadIds.all().map((r) => r.id));
  }
}

function namesBytes(names: string[]): number {
  let bytes = 0;
  for (const name of names) bytes += STRING_OVERHEAD + 2 * name.length;
  return bytes;
}

/** What V8 spends on a short string besides its characters, and on its slot in an array. */
const STRING_OVERHEAD = 24;

function recordBytes(record: ManifestRecord): number {
  return record.content.length + (record.annotations?.length ?? 0) * 2;
}

function toRecord(row: ManifestRow | undefined): ManifestRecord | undefined {
  return (
    row && {
      digest: row.digest,
      mediaType: row.media_type,
      artifactType: row.artifact_type,
      subject: row.subject,
      annotations: row.annotations,
      size: row.size,
      content: row.content,
    }
  );
}
