import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Digest } from '../digest.js';

/** Streams read 1 MiB at a time: Node serves files about twice as fast as with 64 KiB chunks. */
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

  read(digest: Digest, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.blobPath(digest), { highWaterMark: READ_CHUNK, ...range });
  }

  /**
   * Moves a verified file into the store: fsync the file, rename it to its content
   * address (atomic; an existing copy holds the same bytes), fsync the directory.
   * The file's mtime is set to now first: a blob file's mtime is the time it was
   * published, which a collector's grace period relies on.
   */
  async publish(source: string, digest: Digest): Promise<void> {
    const target = this.blobPath(digest);
    const dir = dirname(target);
    const now = new Date();
    await utimes(source, now, now);
    if (this.durable) await fsyncPath(source);
    const created = await mkdir(dir, { recursive: true });
    await rename(source, target);
    if (!this.durable) return;
    await fsyncPath(dir);
    // A directory made just now must also be durable in its parent(s).
    if (created !== undefined) {
      for (let d = dir; d !== dirname(created); d = dirname(d)) await fsyncPath(dirname(d));
    }
  }

  async listUploadFiles(): Promise<string[]> {
    return readdir(this.uploadsDir);
  }
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
