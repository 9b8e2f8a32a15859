import { randomUUID } from 'node:crypto';
import { readFile, rm, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { MetadataIndex } from '../db/index.js';
import { tryParseDigest, type Digest } from '../digest.js';
import { oci } from '../errors.js';
import type { BlobFiles } from './files.js';
import type { LayerContents, LayerDigests } from './layers.js';
import { receiveInto } from './receive.js';

/**
 * Blobs as a repository sees them: a global content-addressed store plus per-repository
 * links. A blob is served from a repository only if it was pushed or mounted there.
 */
export class BlobService {
  /** `layers`, when given, follows uploads to learn what they hold uncompressed. */
  constructor(
    private readonly files: BlobFiles,
    private readonly index: MetadataIndex,
    readonly layers?: LayerDigests,
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

  /** A small stored blob's bytes (at most `maxBytes`), or undefined when the store does not have it. */
  async read(digest: string, maxBytes: number): Promise<Buffer | undefined> {
    const parsed = tryParseDigest(digest);
    const size = this.index.blobSize(digest);
    if (!parsed || size === undefined || size > maxBytes) return undefined;
    try {
      return await readFile(this.files.blobPath(parsed));
    } catch {
      return undefined; // collected meanwhile
    }
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
    const id = randomUUID();
    const temp = this.files.tempPath(id);
    const { writer } = this.files;
    const hash = writer.newHash(digest.algorithm);
    try {
      const { bytes: size, digest: hex } = await receiveInto(writer, body, temp, hash, {
        flags: 'w',
        durable: this.files.durable,
        final: true,
        digest: true,
        started: this.layers && ((head) => this.layers!.started(id, temp, head)),
      });
      const actual = `${digest.algorithm}:${hex}`;
      if (actual !== digest.value) throw digestMismatch(digest.value, actual);
      const contents = this.layers?.completed(id, digest.value, size);
      await this.commit(repo, temp, digest, size, { fresh: true, contents });
      return size;
    } catch (err) {
      writer.drop(hash); // if the failure came before the digest
      this.layers?.abandon(id);
      await rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * Makes verified bytes at `source` a blob of `repo`: into the store first (durable),
   * then the index row that points at it. `source` is consumed. The file is published
   * even when the digest is already stored, so a collector that removed the old copy
   * in the meantime cannot leave the new row without bytes. `contents`: what the blob
   * holds uncompressed, when known already.
   */
  async commit(
    repo: string,
    source: string,
    digest: Digest,
    size: number,
    options: { fresh?: boolean; contents?: LayerContents } = {},
  ): Promise<void> {
    await this.files.publish(source, digest, options);
    await this.index.addBlob(repo, digest.value, size, { contents: options.contents ?? this.layers?.take(digest.value) });
  }

  /**
   * The end of upload session `id`, whose verified data is `source`: the file goes into
   * the store as a second link, so the session keeps its data until the one transaction
   * that records the blob also ends the session. Killed at any instant, the upload is
   * either complete or still resumable with every byte it had. The caller removes
   * `source` afterwards. `contents` as for `commit`.
   */
  async commitUpload(
    repo: string,
    id: string,
    source: string,
    digest: Digest,
    size: number,
    options: { fresh?: boolean; contents?: LayerContents } = {},
  ): Promise<void> {
    await this.files.publish(source, digest, { fresh: options.fresh, keep: true });
    await this.index.addBlob(repo, digest.value, size, { contents: options.contents ?? this.layers?.take(digest.value), upload: id });
  }
}

export function digestMismatch(expected: string, actual: string) {
  return oci('DIGEST_INVALID', 'provided digest did not match uploaded content', { expected, actual });
}
