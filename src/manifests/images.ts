import type { LayerDigests } from '../blobstore/layers.js';
import type { BlobService } from '../blobstore/service.js';
import type { ImageRecord } from '../db/images.js';
import type { MetadataIndex } from '../db/index.js';
import { oci } from '../errors.js';
import { ConfigProblem, ImageConfigError, layerHistory, parseImageConfig, type ImageConfig } from './image-config.js';
import { parseManifest, type Descriptor, type ParsedManifest } from './parse.js';
import { checkLayers, type LayerCheck, type Verification, type VerifyMode } from './verify.js';

/** Configs larger than this are not read (real ones are a few KiB; Docker refuses more than 8 MiB too). */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** The annotation (or config label) that describes an image, as docker search and the browse API show it. */
export const DESCRIPTION = 'org.opencontainers.image.description';

/** Where a manifest came from: a push (refused per `verify.layers`) or the mirror (logged, never refused). */
export type ImageSource = 'push' | 'mirror';

export interface Log {
  warn(fields: object, message: string): void;
}

/** Told the outcome of every check of an image's layers. */
export type VerificationListener = (source: ImageSource, result: Verification) => void;

/**
 * What a manifest is, for the index (src/db/images.ts), and the check of an image's layers
 * against its config's `rootfs.diff_ids` on push: its config fields, platforms, layers with
 * their diff_ids and history lines, and description.
 */
export class ImageFacts {
  constructor(
    private readonly index: MetadataIndex,
    private readonly blobs: BlobService,
    private readonly layers: LayerDigests,
    private readonly mode: VerifyMode,
    private readonly verified: VerificationListener = () => {},
  ) {}

  /**
   * The index record of a pushed manifest, whose blobs are in `repo`. An image's layers are
   * checked as `verify.layers` says: a mismatch, an invalid config or (strict) an
   * unverifiable image is refused with MANIFEST_INVALID, or logged and counted (warn).
   */
  async pushed(repo: string, parsed: ParsedManifest, log: Log): Promise<ImageRecord> {
    if (parsed.kind !== 'image' || this.mode === 'off') return this.describe(repo, parsed, this.mode === 'off' ? 'unchecked' : null);
    const { image, check } = await this.assess(repo, parsed);
    this.verified('push', check.result);
    const refused =
      check.result === 'mismatch' || check.result === 'invalid' || (check.result === 'unverifiable' && this.mode === 'strict');
    if (refused && this.mode !== 'warn') {
      throw oci('MANIFEST_INVALID', check.message, check.mismatches.length > 0 ? check.mismatches : undefined);
    }
    if (check.result !== 'verified') {
      log.warn({ repository: repo, config: parsed.config!.digest, result: check.result, mismatches: check.mismatches }, `image layers: ${check.message}`);
    }
    return this.record(parsed, image, check.result);
  }

  /**
   * The index record of a manifest as far as the store allows (a mirrored manifest's
   * config may not have arrived yet), without checking anything. `verification`: what to
   * record (null: still to be checked).
   */
  async describe(repo: string, parsed: ParsedManifest, verification: Verification | null): Promise<ImageRecord> {
    if (parsed.kind === 'index') return this.indexRecord(repo, parsed);
    let image: ImageConfig | undefined;
    if (parsed.kind === 'image') {
      const bytes = await this.readConfig(parsed.config!);
      try {
        image = bytes && parseImageConfig(bytes);
      } catch (err) {
        if (!(err instanceof ConfigProblem)) throw err;
        if (err instanceof ImageConfigError) image = err.config;
      }
    }
    return this.record(parsed, image, verification);
  }

  /**
   * Checks a mirrored image once all its blobs are cached: a mismatch is logged and
   * counted, never refused (the mirror serves what upstream has). Returns the outcome,
   * or undefined while blobs are missing.
   */
  async checkMirrored(repo: string, parsed: ParsedManifest, log: Log): Promise<{ record: ImageRecord; result: Verification } | undefined> {
    if (parsed.kind !== 'image') return undefined;
    const missing = [parsed.config!, ...parsed.layers].some((d) => this.index.linkedBlobSize(repo, d.digest) === undefined && !foreign(d));
    if (missing) return undefined;
    if (this.mode === 'off') return { record: await this.describe(repo, parsed, 'unchecked'), result: 'unchecked' };
    const { image, check } = await this.assess(repo, parsed);
    this.verified('mirror', check.result);
    if (check.result !== 'verified') {
      log.warn(
        { repository: repo, config: parsed.config!.digest, result: check.result, mismatches: check.mismatches },
        `mirrored image layers: ${check.message}; served as the upstream has it`,
      );
    }
    return { record: this.record(parsed, image, check.result), result: check.result };
  }

  /**
   * Indexes the manifests stored before the image index existed (or whose rows a crash
   * lost): in batches, yielding to requests between them, until none is left or `stop`
   * says so. Idempotent: only manifests without rows are read. Returns how many it indexed.
   */
  async backfill(stop: () => boolean, batch = 200): Promise<number> {
    let indexed = 0;
    for (let after = 0; !stop(); ) {
      const rows = this.index.images.unindexed(after, batch);
      if (rows.length === 0) break;
      const records: Array<[number, ImageRecord]> = [];
      for (const row of rows) {
        let parsed: ParsedManifest;
        try {
          parsed = parseManifest(row.content, row.mediaType);
        } catch {
          continue; // stored bytes that no longer parse are fsck's to report
        }
        records.push([row.id, await this.describe(row.repository, parsed, parsed.kind === 'image' ? 'unchecked' : null)]);
      }
      if (stop()) break;
      indexed += this.index.images.update(records);
      after = rows.at(-1)!.id;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return indexed;
  }

  /** Reads the config of an image whose blobs are in `repo` and checks its layers against it. */
  private async assess(repo: string, parsed: ParsedManifest): Promise<{ image: ImageConfig | undefined; check: LayerCheck }> {
    let image: ImageConfig | undefined;
    try {
      const bytes = await this.readConfig(parsed.config!);
      if (!bytes) throw new ConfigProblem(`the image config is larger than ${MAX_CONFIG_BYTES} bytes`);
      image = parseImageConfig(bytes);
    } catch (err) {
      if (!(err instanceof ConfigProblem)) throw err;
      if (err instanceof ImageConfigError) image = err.config;
      return { image, check: { result: 'invalid', message: err.message, mismatches: [] } };
    }
    const check = await checkLayers(
      parsed.layers,
      image.diffIds!,
      (digest) => this.index.linkedBlobSize(repo, digest) !== undefined,
      (digest) => this.layers.contents(digest),
    );
    return { image, check };
  }

  /** The config's bytes, or undefined when the store does not have them (or they are too large to read). */
  private async readConfig(config: Descriptor): Promise<Buffer | undefined> {
    if (config.size > MAX_CONFIG_BYTES) return undefined;
    return this.blobs.read(config.digest, MAX_CONFIG_BYTES);
  }

  private record(parsed: ParsedManifest, image: ImageConfig | undefined, verification: Verification | null): ImageRecord {
    const config = parsed.config!;
    const createdBy = layerHistory(image?.history ?? [], parsed.layers.length);
    const details = image && {
      entrypoint: image.entrypoint,
      cmd: image.cmd,
      env: image.env,
      workingDir: image.workingDir,
      user: image.user,
      labels: image.labels,
      exposedPorts: image.exposedPorts,
    };
    return {
      kind: parsed.kind,
      configDigest: config.digest,
      configMediaType: config.mediaType,
      configSize: config.size,
      configRead: image !== undefined,
      created: image?.created ?? null,
      author: image?.author ?? null,
      os: image?.os ?? null,
      architecture: image?.architecture ?? null,
      variant: image?.variant ?? null,
      details: details ? JSON.stringify(details) : null,
      history: image ? JSON.stringify(image.history) : null,
      platforms: null,
      description: parsed.annotations?.[DESCRIPTION] ?? image?.labels[DESCRIPTION] ?? null,
      contentBytes: config.size + parsed.layers.reduce((sum, l) => sum + l.size, 0),
      verification: parsed.kind === 'image' ? verification : null,
      layers: parsed.layers.map((l, i) => ({
        position: i,
        digest: l.digest,
        mediaType: l.mediaType,
        size: l.size,
        diffId: parsed.kind === 'image' ? (image?.diffIds?.[i] ?? null) : null,
        createdBy: createdBy[i] ?? null,
      })),
    };
  }

  private indexRecord(repo: string, parsed: ParsedManifest): ImageRecord {
    const platforms = parsed.children.map((d) => ({
      digest: d.digest,
      os: str(d.platform?.os),
      architecture: str(d.platform?.architecture),
      variant: str((d.platform as Record<string, unknown> | undefined)?.variant),
    }));
    const childDescription = () => {
      for (const child of parsed.children) {
        const description = this.index.images.description(repo, child.digest);
        if (description) return description;
      }
      return null;
    };
    return {
      kind: 'index',
      configDigest: null,
      configMediaType: null,
      configSize: null,
      configRead: false,
      created: null,
      author: null,
      os: null,
      architecture: null,
      variant: null,
      details: null,
      history: null,
      platforms: JSON.stringify(platforms),
      description: parsed.annotations?.[DESCRIPTION] ?? childDescription(),
      contentBytes: 0,
      verification: null,
      layers: [],
    };
  }
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const foreign = (d: Descriptor) => d.urls !== undefined && d.urls.length > 0;
