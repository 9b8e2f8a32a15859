import { randomUUID } from 'node:crypto';
import { copyFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { MetadataIndex } from '../db/index.js';
import type { Algorithm, Digest } from '../digest.js';
import { oci } from '../errors.js';
import type { BlobFiles } from './files.js';
import { receiveInto } from './receive.js';
import { digestMismatch, type BlobService } from './service.js';

/**
 * A running hash (LIVE_ALGORITHM) over an upload's bytes, kept by the writer thread under
 * the id `hash`; `offset` counts the bytes written so far (dropped when a write fails).
 */
interface LiveHash {
  hash: number;
  offset: number;
}

/** What clients push with: other algorithms are verified by reading the file at the end. */
const LIVE_ALGORITHM: Algorithm = 'sha256';

/** Bytes a client says a chunk covers (`Content-Range: start-end`, inclusive). */
export interface ChunkRange {
  start: number;
  end: number;
}

/**
 * Resumable upload sessions: a row in the index plus a data file under uploads/.
 * Chunks are appended and hashed as they stream; the running hash lives on the writer
 * thread and is rebuilt from the file when missing (after a restart, or if the thread
 * died) or out of step.
 */
export class UploadSessions {
  private readonly live = new Map<string, LiveHash>();
  private readonly busy = new Set<string>();
  /**
   * Sessions whose data file may also be a blob file (a completion linked it into the
   * store and did not commit, or was killed before it could): the next chunk goes to a
   * copy, never into the blob's bytes.
   */
  private readonly shared = new Set<string>();

  constructor(
    private readonly files: BlobFiles,
    private readonly index: MetadataIndex,
    private readonly blobs: BlobService,
    private readonly idleTimeoutMs: number,
    /** The time sessions are stamped with and judged idle by. */
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Reconciles files with rows after a restart: data without a session is removed (a
   * completion that committed left it behind, or the session was cancelled). A session
   * without a data file is an empty one (the file appears with the first chunk). A data
   * file with a second link is one a completion had put into the store when the process
   * died: the session goes on from all its bytes, and appends to a copy.
   */
  async recover(): Promise<void> {
    const rows = this.index.uploadIds();
    for (const file of await this.files.listUploadFiles()) {
      const path = this.files.uploadPath(file);
      if (!rows.has(file)) await rm(path, { force: true });
      else if ((await stat(path)).nlink > 1) this.shared.add(file);
    }
  }

  async create(repo: string): Promise<string> {
    const id = randomUUID();
    this.index.createUpload(id, repo, this.now());
    this.live.set(id, { hash: this.files.writer.newHash(LIVE_ALGORITHM), offset: 0 });
    return id;
  }

  /** Current size of the session's data. */
  async offset(repo: string, id: string): Promise<number> {
    this.session(repo, id);
    return this.size(id);
  }

  async append(repo: string, id: string, body: Readable, range: ChunkRange | undefined): Promise<number> {
    return this.exclusive(repo, id, async () => (await this.appendChunk(id, body, range)).size);
  }

  /** Appends an optional last chunk, verifies the digest, and commits the blob. */
  async complete(repo: string, id: string, digest: Digest, body: Readable | undefined, range: ChunkRange | undefined): Promise<number> {
    return this.exclusive(repo, id, async () => {
      const last = body !== undefined ? await this.appendChunk(id, body, range, digest.algorithm) : undefined;
      // A non-empty last chunk leaves the file just written and synced: fresh to publish.
      const fresh = last !== undefined && last.bytes > 0;
      const path = this.files.uploadPath(id);
      const size = last?.size ?? (await this.size(id));
      if (size === 0) await writeFile(path, '', { flag: 'a' });
      const actual = `${digest.algorithm}:${last?.digest ?? (await this.digestOf(id, digest.algorithm))}`;
      if (actual !== digest.value) {
        await this.remove(id);
        throw digestMismatch(digest.value, actual);
      }
      const contents = this.blobs.layers?.completed(id, digest.value, size);
      this.shared.add(id);
      await this.blobs.commitUpload(repo, id, path, digest, size, { fresh, contents });
      // The session ended with the commit; its file is only the blob's second name now.
      this.shared.delete(id);
      await rm(path, { force: true });
      return size;
    });
  }

  async cancel(repo: string, id: string): Promise<void> {
    await this.exclusive(repo, id, () => this.remove(id));
  }

  /** Removes sessions idle for longer than the configured timeout; returns how many. */
  async purgeIdle(): Promise<number> {
    const stale = this.index.uploadsIdleSince(this.now() - this.idleTimeoutMs).filter((id) => !this.busy.has(id));
    for (const id of stale) await this.remove(id);
    return stale.length;
  }

  private session(repo: string, id: string): void {
    const row = this.index.getUpload(id);
    if (!row || row.repo !== repo || row.updatedAt < this.now() - this.idleTimeoutMs) {
      throw oci('BLOB_UPLOAD_UNKNOWN', `upload ${id} is unknown to repository "${repo}"`, { uuid: id });
    }
  }

  /**
   * One request at a time per session: a second one would race on the file and the hash.
   * Afterwards the row records the time and, while the running hash tracks it, the size.
   */
  private async exclusive<T>(repo: string, id: string, work: () => Promise<T>): Promise<T> {
    this.session(repo, id);
    if (this.busy.has(id)) {
      throw oci('BLOB_UPLOAD_INVALID', 'another request is writing to this upload', { uuid: id }, { status: 409 });
    }
    this.busy.add(id);
    let failed = true;
    try {
      const result = await work();
      failed = false;
      return result;
    } finally {
      this.busy.delete(id);
      try {
        this.index.touchUpload(id, this.now(), this.live.get(id)?.offset); // a no-op once the session is gone
      } catch (err) {
        if (!failed) throw err; // otherwise the work's own error says more
      }
    }
  }

  /**
   * Appends one chunk; returns the bytes written and the session's size after them. The
   * blob's last chunk (`final`: the algorithm of the digest it must match) is synced at
   * once, and when the running hash is of that algorithm, its digest comes back with it
   * (the hash is then used up).
   */
  private async appendChunk(
    id: string,
    body: Readable,
    range: ChunkRange | undefined,
    final?: Algorithm,
  ): Promise<{ bytes: number; size: number; digest: string | undefined }> {
    if (this.shared.has(id)) await this.unshare(id);
    const offset = await this.size(id);
    if (range && range.start !== offset) {
      throw oci('BLOB_UPLOAD_INVALID', `chunk must start at offset ${offset}`, { offset, start: range.start }, {
        status: 416,
        headers: { Range: rangeHeader(offset) },
      });
    }
    let live = this.liveHash(id);
    if (!live) {
      const rebuilt = await this.fileHash(id, offset === 0);
      live = { hash: rebuilt.hash, offset: rebuilt.size };
      this.live.set(id, live);
    }
    try {
      const session = live;
      const digest = final === LIVE_ALGORITHM;
      const path = this.files.uploadPath(id);
      const { layers } = this.blobs;
      // The offset follows the writes, so a status request during a long PATCH shows progress.
      const received = await receiveInto(this.files.writer, body, path, live.hash, {
        flags: 'a',
        durable: this.files.durable,
        final: final !== undefined,
        digest,
        written: (bytes) => (session.offset += bytes),
        // Followed from its first bytes; a session resumed after a restart is computed when needed.
        started: layers && offset === 0 ? (head) => layers.started(id, path, head) : undefined,
      });
      if (digest) this.live.delete(id);
      return { ...received, size: session.offset };
    } catch (err) {
      // Some bytes may have been hashed but not written: rebuild from the file next time.
      this.forget(id);
      throw err;
    }
  }

  /** A new running hash (on the writer thread) fed with the session's data file, unless `empty`; and the file's size. */
  private async fileHash(id: string, empty: boolean): Promise<{ hash: number; size: number }> {
    const { writer } = this.files;
    const hash = writer.newHash(LIVE_ALGORITHM);
    try {
      return { hash, size: empty ? 0 : await writer.hashFile(hash, this.files.uploadPath(id)) };
    } catch (err) {
      writer.drop(hash);
      throw err;
    }
  }

  /**
   * The hex digest of the session's data: its running hash when live and of `algorithm`
   * (used up by this, so it is forgotten), otherwise (another algorithm, or after a
   * restart) read from the file.
   */
  private async digestOf(id: string, algorithm: Algorithm): Promise<string> {
    const { writer } = this.files;
    const live = this.liveHash(id);
    if (algorithm === LIVE_ALGORITHM && live) {
      this.live.delete(id);
      return writer.digest(live.hash);
    }
    return (await writer.fileDigest(this.files.uploadPath(id), algorithm)).hex;
  }

  /** The session's running hash, unless it has none or the writer thread lost it. */
  private liveHash(id: string): LiveHash | undefined {
    const live = this.live.get(id);
    if (live && !this.files.writer.holds(live.hash)) this.live.delete(id);
    return this.live.get(id);
  }

  /** Drops the session's running hash, if it has one. */
  private forget(id: string): void {
    const live = this.live.get(id);
    if (!live) return;
    this.live.delete(id);
    this.files.writer.drop(live.hash);
  }

  /** Gives a session whose data file is also a blob file a copy of its own to append to. */
  private async unshare(id: string): Promise<void> {
    const path = this.files.uploadPath(id);
    if ((await stat(path)).nlink > 1) {
      // In tmp/ until it replaces the data file: a crash meanwhile leaves nothing behind.
      const copy = this.files.tempPath(randomUUID());
      try {
        await copyFile(path, copy);
        await rename(copy, path);
      } catch (err) {
        await rm(copy, { force: true });
        throw err;
      }
    }
    this.shared.delete(id);
  }

  private async remove(id: string): Promise<void> {
    this.forget(id);
    this.blobs.layers?.abandon(id);
    this.shared.delete(id);
    this.index.deleteUpload(id);
    await rm(this.files.uploadPath(id), { force: true });
  }

  /**
   * Bytes received so far: tracked in memory while the running hash is live (it is
   * dropped whenever a write fails), read from the file after a restart. A file missing
   * or shorter than what the session's row last recorded means its data was lost (by
   * something outside Berth): the session is ended rather than reported as holding less,
   * so no client resumes from a wrong offset.
   */
  private async size(id: string): Promise<number> {
    const live = this.liveHash(id);
    if (live) return live.offset;
    let size = 0;
    try {
      size = (await stat(this.files.uploadPath(id))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const received = this.index.getUpload(id)?.received ?? 0;
    if (size < received) {
      if (!this.busy.has(id)) await this.remove(id);
      throw oci('BLOB_UPLOAD_UNKNOWN', `upload ${id} lost its data (${received} bytes received, ${size} found); start it again`, {
        uuid: id,
        received,
        found: size,
      });
    }
    return size;
  }
}

/** The `Range` header of an upload: inclusive last byte, `0-0` while empty (what clients expect). */
export function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}
