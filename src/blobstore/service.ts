import { randomUUID } from 'node:crypto';
import { rm, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { MetadataIndex } from '../db/index.js';
import type { Digest } from '../digest.js';
import { oci } from '../errors.js';
import type { BlobFiles } from './files.js';
import { receiveInto } from './receive.js';

/**
 * Blobs as a repository sees them: a global content-addressed store plus per-repository
 * links. A blob is served from a repository only if it was pushed or mounted there.
 */
export class BlobService {
  constructor(
    private readonly files: BlobFiles,
    private readonly index: MetadataIndex,
  ) {}

  /** Size of `digest` as served by `repo`, if it does. */
  size(repo: string, digest: Digest): number | undefined {
    return this.index.linkedBlobSize(repo, digest.value);
  }

  /** Size of `digest` as served by `repo`; BLOB_UNKNOWN (or NAME_UNKNOWN) otherwise. */
  stat(repo: string, digest: Digest): number {
    const size = this.size(repo, digest);
    if (size !== undefined) return size;
    if (this.index.repositoryId(repo) === undefined) throw oci('NAME_UNKNOWN', `repository "${repo}" is not known`, { name: repo });
    throw oci('BLOB_UNKNOWN', `blob ${digest.value} is unknown to repository "${repo}"`, { digest: digest.value });
  }

  open(digest: Digest): Promise<FileHandle> {
    return this.files.open(digest);
  }

  /** Removes the repository's link; the bytes stay in the store for other repositories. */
  async unlink(repo: string, digest: Digest): Promise<void> {
    this.stat(repo, digest);
    await this.index.unlinkBlob(this.index.repositoryId(repo)!, digest.value);
  }

  /**
   * Cross-repository mount. With `from`, the blob must be linked there; without it,
   * any blob already in the store is linked (automatic mount), or with `readable` only
   * one linked in a repository that passes it (one the caller may pull). Returns the
   * size, or undefined when nothing could be mounted and the client should upload.
   */
  mount(
    repo: string,
    digest: Digest,
    from: string | undefined,
    readable?: (repository: string) => boolean,
  ): Promise<number | undefined> {
    return this.index.mountBlob(repo, digest.value, from, readable);
  }

  /** Monolithic upload: stream into a temp file, verify, commit. */
  async put(repo: string, digest: Digest, body: Readable): Promise<number> {
    const temp = this.files.tempPath(randomUUID());
    const { writer } = this.files;
    const hash = writer.newHash(digest.algorithm);
    try {
      const { bytes: size, digest: hex } = await receiveInto(writer, body, temp, hash, {
        flags: 'w',
        durable: this.files.durable,
        final: true,
        digest: true,
      });
      const actual = `${digest.algorithm}:${hex}`;
      if (actual !== digest.value) throw digestMismatch(digest.value, actual);
      await this.commit(repo, temp, digest, size, { fresh: true });
      return size;
    } catch (err) {
      writer.drop(hash); // if the failure came before the digest
      await rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * Makes verified bytes at `source` a blob of `repo`: into the store first (durable),
   * then the index row that points at it. `source` is consumed. The file is published
   * even when the digest is already stored, so a collector that removed the old copy
   * in the meantime cannot leave the new row without bytes.
   */
  async commit(repo: string, source: string, digest: Digest, size: number, options: { fresh?: boolean } = {}): Promise<void> {
    await this.files.publish(source, digest, options);
    await this.index.addBlob(repo, digest.value, size);
  }

  /**
   * The end of upload session `id`, whose verified data is `source`: the file goes into
   * the store as a second link, so the session keeps its data until the one transaction
   * that records the blob also ends the session. Killed at any instant, the upload is
   * either complete or still resumable with every byte it had. The caller removes
   * `source` afterwards.
   */
  async commitUpload(repo: string, id: string, source: string, digest: Digest, size: number, options: { fresh?: boolean } = {}): Promise<void> {
    await this.files.publish(source, digest, { ...options, keep: true });
    await this.index.addBlob(repo, digest.value, size, id);
  }
}

export function digestMismatch(expected: string, actual: string) {
  return oci('DIGEST_INVALID', 'provided digest did not match uploaded content', { expected, actual });
}
