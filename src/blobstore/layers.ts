import type { MetadataIndex } from '../db/index.js';
import { tryParseDigest } from '../digest.js';
import type { BlobFiles } from './files.js';
import { LayerThread, type LayerContents } from './layer-thread.js';

export type { LayerContents, LayerFormat } from './layer-thread.js';

/** Results kept for blobs whose rows are not written yet. */
const MAX_EARLY = 1000;

/** When a blob's contents were computed: while it uploaded, or when first needed. */
export type ComputedWhen = 'upload' | 'lazy';

/** An upload being followed: a decompression job, or the knowledge that it is not compressed. */
type Watch = { kind: 'job'; job: number; result: Promise<LayerContents> } | { kind: 'plain' };

/**
 * The compression a stream's first bytes announce (the magic numbers of gzip, with
 * deflate, and of a zstd frame); 'unknown' when too few bytes came to tell.
 */
export function sniff(head: Uint8Array): 'gzip' | 'zstd' | 'none' | 'unknown' {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length < 4) return 'unknown';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * What each blob holds once uncompressed (its uncompressed digest, the "diff_id" of a
 * layer, and size), as the index remembers it. Uploads are watched from their first
 * bytes: a gzip or zstd stream is decompressed and hashed on the layer thread while it
 * arrives (it may finish shortly after the upload), anything else is its own uncompressed
 * form. Blobs that arrived otherwise (before this existed, from the mirror, an upload
 * resumed after a restart) are computed once, when first needed, and remembered.
 */
export class LayerDigests {
  private readonly thread = new LayerThread();
  private readonly watches = new Map<string, Watch>();
  /** Computations in flight, by blob digest. */
  private readonly pending = new Map<string, Promise<LayerContents | undefined>>();
  private readonly listeners: Array<(when: ComputedWhen, contents: LayerContents) => void> = [];
  /**
   * Results that came before their blob's row (a small upload decompresses faster than it
   * is published): handed to the row when it is written (`take`). Bounded; what falls out
   * is computed again when needed.
   */
  private readonly early = new Map<string, LayerContents>();

  /** `watching`: whether uploads are decompressed as they arrive (off when verification is). */
  constructor(
    private readonly files: BlobFiles,
    private readonly index: MetadataIndex,
    private readonly watching: boolean,
  ) {}

  /** Calls `listener` for every computation that finished. */
  onComputed(listener: (when: ComputedWhen, contents: LayerContents) => void): void {
    this.listeners.push(listener);
  }

  /**
   * An upload (`key`: its session or temp file) has its first bytes `head` in `path`,
   * from offset 0. Starts following it when they are gzip or zstd.
   */
  started(key: string, path: string, head: Buffer): void {
    if (!this.watching) return;
    this.abandon(key);
    const format = sniff(head);
    if (format === 'unknown') return;
    if (format === 'none') {
      this.watches.set(key, { kind: 'plain' });
      return;
    }
    const { job, result } = this.thread.follow(path, format);
    result.catch(() => {}); // a cancelled or failed job is abandoned, or computed again when needed
    this.watches.set(key, { kind: 'job', job, result });
  }

  /**
   * The upload `key` became blob `digest` of `size` bytes. Returns its contents when known
   * already (an uncompressed blob), to be stored with the blob's row; otherwise they are
   * stored when the decompression finishes.
   */
  completed(key: string, digest: string, size: number): LayerContents | undefined {
    const watch = this.watches.get(key);
    this.watches.delete(key);
    if (!watch) return undefined;
    if (watch.kind === 'plain') return { format: 'none', digest, size, error: undefined };
    const parsed = tryParseDigest(digest)!;
    this.thread.end(watch.job, size, this.files.blobPath(parsed));
    this.track(
      digest,
      watch.result.then(
        (contents) => this.remember(digest, contents, 'upload'),
        () => undefined,
      ),
    );
    return undefined;
  }

  /** The upload `key` failed or was cancelled: stop following it. */
  abandon(key: string): void {
    const watch = this.watches.get(key);
    if (!watch) return;
    this.watches.delete(key);
    if (watch.kind === 'job') this.thread.cancel(watch.job);
  }

  /**
   * What blob `digest` holds uncompressed: remembered, being computed (waited for), or
   * computed now from its file and remembered. Undefined when the store does not have it.
   */
  async contents(digest: string): Promise<LayerContents | undefined> {
    const known = this.index.images.layerContents(digest) ?? this.early.get(digest);
    if (known) return known;
    const running = this.pending.get(digest);
    if (running) {
      const contents = await running;
      if (contents) return contents;
    }
    return this.track(digest, this.compute(digest));
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }

  private async compute(digest: string): Promise<LayerContents | undefined> {
    const parsed = tryParseDigest(digest);
    const size = this.index.blobSize(digest);
    if (!parsed || size === undefined) return undefined;
    let contents: LayerContents;
    try {
      contents = await this.thread.inspect(this.files.blobPath(parsed), size);
    } catch {
      return undefined; // the file is gone (collected meanwhile) or the thread failed
    }
    if (contents.format === 'none') contents = { ...contents, digest, size };
    return this.remember(digest, contents, 'lazy');
  }

  private track(digest: string, computation: Promise<LayerContents | undefined>): Promise<LayerContents | undefined> {
    this.pending.set(digest, computation);
    const settled = () => {
      if (this.pending.get(digest) === computation) this.pending.delete(digest);
    };
    computation.then(settled, settled);
    return computation;
  }

  /** A result that came before blob `digest` had a row, to be written with the row. */
  take(digest: string): LayerContents | undefined {
    const contents = this.early.get(digest);
    this.early.delete(digest);
    return contents;
  }

  private remember(digest: string, contents: LayerContents, when: ComputedWhen): LayerContents {
    if (!this.index.images.setLayerContents(digest, contents) && this.index.blobSize(digest) === undefined) {
      this.early.set(digest, contents);
      if (this.early.size > MAX_EARLY) this.early.delete(this.early.keys().next().value!);
    }
    for (const listener of this.listeners) listener(when, contents);
    return contents;
  }
}
