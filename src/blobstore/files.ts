import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Digest } from '../digest.js';
import { WriterThread } from './writer-thread.js';

/** Files are read 1 MiB at a time: Node serves files about twice as fast as with 64 KiB chunks. */
export const READ_CHUNK = 1024 * 1024;

/**
 * The filesystem side of the store. Layout under the storage root:
 *   blobs/<alg>/<first two hex>/<hex>   verified content, immutable
 *   uploads/<id>                        data of open upload sessions
 *   tmp/                                monolithic uploads being received
 * Only verified bytes are ever renamed into blobs/, after an fsync, so a crash
 * can leave an orphan upload or temp file but never a partial blob.
 */
export class BlobFiles {
  readonly blobsDir: string;
  readonly uploadsDir: string;
  readonly tmpDir: string;
  /** Hashes and writes incoming bytes off the event loop. */
  readonly writer = new WriterThread();
  /** Blob directories known to exist (at most 256 per algorithm). */
  private readonly knownDirs = new Set<string>();
  private readonly dirHandles = new Map<string, Promise<FileHandle>>();

  constructor(
    readonly root: string,
    readonly durable: boolean,
  ) {
    this.blobsDir = join(root, 'blobs');
    this.uploadsDir = join(root, 'uploads');
    this.tmpDir = join(root, 'tmp');
  }

  async init(): Promise<void> {
    for (const dir of [this.blobsDir, this.uploadsDir]) await mkdir(dir, { recursive: true });
    // Nothing in tmp/ was ever acknowledged to a client.
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  blobPath(digest: Digest): string {
    return join(this.blobsDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  uploadPath(id: string): string {
    return join(this.uploadsDir, id);
  }

  tempPath(id: string): string {
    return join(this.tmpDir, id);
  }

  /** Opens a blob for reading; the open handle keeps its bytes readable even if a collector removes the file. */
  open(digest: Digest): Promise<FileHandle> {
    return open(this.blobPath(digest), 'r');
  }

  /**
   * Puts a verified file into the store: fsync the file, rename it to its content
   * address (atomic; an existing copy holds the same bytes, and is replaced), fsync the
   * directory. A blob file's mtime is the time it was published, which a collector's
   * grace period relies on. `fresh` says the caller has just written and fdatasync'ed the
   * file, so both its data and its mtime are already what publishing needs. With `keep`,
   * the source stays where it is: the blob is a second hard link to the same file.
   */
  async publish(source: string, digest: Digest, options: { fresh?: boolean; keep?: boolean } = {}): Promise<void> {
    const target = this.blobPath(digest);
    const dir = dirname(target);
    if (!options.fresh) {
      const now = new Date();
      await utimes(source, now, now);
      if (this.durable) await fsyncPath(source);
    }
    const created = this.knownDirs.has(dir) ? undefined : await mkdir(dir, { recursive: true });
    if (options.keep) await this.linkInto(source, target);
    else await rename(source, target);
    if (this.durable) {
      await this.syncDir(dir);
      // A directory made just now must also be durable in its parent(s).
      if (created !== undefined) {
        for (let d = dir; d !== dirname(created); d = dirname(d)) await fsyncPath(dirname(d));
      }
    }
    this.knownDirs.add(dir);
  }

  /**
   * Hard-links `source` at `target`. An existing target is replaced, as a rename would:
   * through a second link in tmp/ renamed over it (tmp/ is emptied at startup, so a
   * crash leaves nothing). When the target already is this very file, the rename does
   * nothing and the extra link goes.
   */
  private async linkInto(source: string, target: string): Promise<void> {
    try {
      await link(source, target);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const temp = this.tempPath(randomUUID());
    await link(source, temp);
    try {
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** fsync of a blob directory through a handle kept open: one call instead of open, fsync, close. */
  private async syncDir(dir: string): Promise<void> {
    let handle = this.dirHandles.get(dir);
    if (!handle) {
      handle = open(dir, 'r');
      this.dirHandles.set(dir, handle);
      handle.catch(() => this.dirHandles.delete(dir));
    }
    await (await handle).sync();
  }

  async close(): Promise<void> {
    await this.writer.terminate();
    const handles = [...this.dirHandles.values()];
    this.dirHandles.clear();
    for (const handle of handles) await (await handle).close();
  }

  async listUploadFiles(): Promise<string[]> {
    return readdir(this.uploadsDir);
  }
}

/** fsync of a file or directory by path (open, sync, close). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
