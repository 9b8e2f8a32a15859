import type { ManifestRecord, MetadataIndex } from '../db/index.js';
import { digestOf, tryParseDigest, type Digest } from '../digest.js';
import { oci } from '../errors.js';
import { isValidTag } from '../names.js';
import type { ImageFacts, Log } from './images.js';
import { MediaType } from './media-types.js';
import { manifestRow, parseManifest, type Descriptor } from './parse.js';

/** A manifest reference: a tag or a digest. */
export type Reference = { tag: string; digest?: undefined } | { digest: Digest; tag?: undefined };

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Manifests, tags and referrers of repositories: the OCI rules on top of the index. */
export class ManifestService {
  /** `images`: what each pushed manifest is, and the check of images' layers (none: nothing indexed). */
  constructor(
    private readonly index: MetadataIndex,
    private readonly images?: ImageFacts,
  ) {}

  /** Parses a reference from the URL; undefined when it is neither a valid tag nor digest. */
  static parseReference(value: string): Reference | undefined {
    if (value.includes(':')) {
      const digest = tryParseDigest(value);
      return digest && { digest };
    }
    return isValidTag(value) ? { tag: value } : undefined;
  }

  /** Verifies and stores a manifest; returns its digest and subject. */
  async put(
    repo: string,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
    log: Log,
  ): Promise<{ digest: string; subject: string | null }> {
    const digest = digestOf(body, reference.digest?.algorithm);
    if (reference.digest && reference.digest.value !== digest) {
      throw oci('DIGEST_INVALID', 'manifest digest does not match the digest in the reference', {
        expected: reference.digest.value,
        actual: digest,
      });
    }
    const parsed = parseManifest(body, contentType);
    // Missing references are the client's first problem to hear of; the transaction checks again.
    this.checkReferences(repo, this.index.repositoryId(repo), parsed.blobs, parsed.children);
    const image = await this.images?.pushed(repo, parsed, log);
    await this.index.putManifest(
      repo,
      manifestRow(body, digest, parsed),
      reference.tag,
      (repoId) => this.checkReferences(repo, repoId, parsed.blobs, parsed.children),
      image,
    );
    return { digest, subject: parsed.subject };
  }

  /** Everything a manifest points at must already be in the repository, with the stated size. */
  private checkReferences(repo: string, repoId: number | undefined, blobs: Descriptor[], children: Descriptor[]): void {
    const missingBlobs: string[] = [];
    for (const d of blobs) {
      const size = this.index.linkedBlobSize(repo, d.digest);
      if (size === undefined) missingBlobs.push(d.digest);
      else if (size !== d.size) {
        throw oci('MANIFEST_INVALID', `descriptor size ${d.size} of ${d.digest} does not match the blob's ${size} bytes`, {
          digest: d.digest,
          size: d.size,
          actual: size,
        });
      }
    }
    if (missingBlobs.length > 0) {
      throw oci('MANIFEST_BLOB_UNKNOWN', `manifest references ${missingBlobs.length} blob(s) unknown to repository "${repo}"`, {
        missing: missingBlobs,
      });
    }
    const missingChildren = children
      .filter((d) => repoId === undefined || !this.index.hasManifest(repoId, d.digest))
      .map((d) => d.digest);
    if (missingChildren.length > 0) {
      // The spec's code for anything a manifest references that the repository lacks, children included.
      throw oci('MANIFEST_BLOB_UNKNOWN', `index references ${missingChildren.length} manifest(s) unknown to repository "${repo}"`, {
        missing: missingChildren,
      });
    }
  }

  get(repo: string, reference: Reference): ManifestRecord {
    const manifest = this.find(repo, reference);
    if (manifest) return manifest;
    this.repositoryId(repo);
    throw manifestUnknown(repo, reference);
  }

  /** The manifest, if the repository has it: one cached lookup, the hot path of every pull. */
  find(repo: string, reference: Reference): ManifestRecord | undefined {
    return reference.digest
      ? this.index.manifestByDigest(repo, reference.digest.value)
      : this.index.manifestByTag(repo, reference.tag!);
  }

  /** By digest: the manifest and its tags. By tag: only the tag. */
  async delete(repo: string, reference: Reference): Promise<void> {
    const repoId = this.repositoryId(repo);
    const deleted = reference.digest
      ? await this.index.deleteManifest(repoId, reference.digest.value)
      : await this.index.deleteTag(repoId, reference.tag!);
    if (!deleted) throw manifestUnknown(repo, reference);
  }

  /** A page of tags after `last` (exclusive), plus whether more follow. */
  tags(repo: string, last: string, limit: number): { tags: string[]; more: boolean } {
    const rows = this.index.listTags(this.repositoryId(repo), last, limit + 1);
    return { tags: rows.slice(0, limit), more: rows.length > limit };
  }

  /**
   * A page of repository names after `last` (exclusive), plus whether more follow. With
   * `visible`, only the names it accepts (those the caller may pull) count.
   */
  repositories(last: string, limit: number, visible?: (name: string) => boolean): { repositories: string[]; more: boolean } {
    if (visible === undefined) {
      const rows = this.index.listRepositories(last, limit + 1);
      return { repositories: rows.slice(0, limit), more: rows.length > limit };
    }
    const page: string[] = [];
    const batch = Math.max(limit + 1, 100);
    for (let after = last; page.length <= limit; ) {
      const rows = this.index.listRepositories(after, batch);
      page.push(...rows.filter(visible));
      if (rows.length < batch) break;
      after = rows.at(-1)!;
    }
    return { repositories: page.slice(0, limit), more: page.length > limit };
  }

  referrers(repo: string, subject: Digest, artifactType: string | undefined): ReferrerDescriptor[] {
    const repoId = this.index.repositoryId(repo);
    if (repoId === undefined) return [];
    return this.index
      .referrers(repoId, subject.value)
      .filter((r) => artifactType === undefined || r.artifactType === artifactType)
      .map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        ...(r.artifactType !== null && { artifactType: r.artifactType }),
        ...(r.annotations !== null && { annotations: JSON.parse(r.annotations) as Record<string, string> }),
      }));
  }

  private repositoryId(repo: string): number {
    const id = this.index.repositoryId(repo);
    if (id === undefined) throw oci('NAME_UNKNOWN', `repository "${repo}" is not known`, { name: repo });
    return id;
  }
}

function manifestUnknown(repo: string, reference: Reference) {
  const ref = reference.tag ?? reference.digest!.value;
  return oci('MANIFEST_UNKNOWN', `manifest ${ref} is unknown to repository "${repo}"`, { reference: ref });
}

export const REFERRERS_MEDIA_TYPE = MediaType.ociIndex;
