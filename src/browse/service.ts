import type { BrowseQueries, ManifestRow, RepositoryRow } from '../db/browse.js';
import type { ManifestKind } from '../db/images.js';
import { tryParseDigest } from '../digest.js';
import { oci } from '../errors.js';
import type { UsageQueries } from '../gc/usage.js';
import { layerHistory, type HistoryEntry } from '../manifests/image-config.js';
import { MediaType } from '../manifests/media-types.js';
import { ManifestService } from '../manifests/service.js';

/** Whether the caller may pull a repository; undefined: everything is visible (auth mode none). */
export type Visible = ((repository: string) => boolean) | undefined;

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface Platform {
  os: string | null;
  architecture: string | null;
  variant: string | null;
}

export interface LastGc {
  at: string;
  reclaimedBytes: number;
  blobsRemoved: number;
  manifestsRemoved: number;
  durationMs: number;
}

export interface MirrorStats {
  cacheBytes: number;
  hits: number;
  misses: number;
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const json = <T>(text: string | null, fallback: T): T => (text === null ? fallback : (JSON.parse(text) as T));
const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];

/**
 * The browse API and docker search over the index: repositories with their figures,
 * tags, manifests and what each is, layers and which images share them, and storage
 * totals. Lists show only what `visible` accepts (what the caller may pull).
 */
export class BrowseService {
  constructor(
    private readonly queries: BrowseQueries,
    private readonly usage: UsageQueries,
    private readonly extras: { lastGc(): LastGc | null; mirror(): MirrorStats | null },
  ) {}

  /** A page of repositories in name order, optionally those matching `q` (as docker search). */
  repositories(q: string | undefined, limit: number, last: string, visible: Visible): Page<ReturnType<BrowseService['summary']>> {
    const page: string[] = [];
    if (q !== undefined && q !== '') {
      const matches = this.queries.search(q).filter((name) => name > last && (visible?.(name) ?? true));
      page.push(...matches.slice(0, limit + 1));
    } else {
      const batch = Math.max(limit + 1, 100);
      for (let after = last; page.length <= limit; ) {
        const names = this.queries.names(after, batch);
        page.push(...names.filter((name) => visible?.(name) ?? true));
        if (names.length < batch) break;
        after = names.at(-1)!;
      }
    }
    const items = page.slice(0, limit).map((name) => this.summary(this.row(name)!));
    return { items, next: page.length > limit ? items.at(-1)!.name : null };
  }

  /** One repository's figures; NAME_UNKNOWN when it does not exist. */
  repository(name: string): ReturnType<BrowseService['summary']> {
    const row = this.row(name);
    if (!row) throw nameUnknown(name);
    return this.summary(row);
  }

  tags(name: string, limit: number, last: string): Page<object> {
    const repoId = this.repoId(name);
    const rows = this.queries.tags(repoId, last, limit + 1);
    const items = rows.slice(0, limit).map((t) => ({
      name: t.tag,
      digest: t.digest,
      mediaType: t.mediaType,
      kind: kindOf(t),
      platforms: this.platforms(t),
      sizeBytes: this.sizeBytes(repoId, t),
      pushedAt: iso(t.updatedAt),
    }));
    return { items, next: rows.length > limit ? rows[limit - 1]!.tag : null };
  }

  /** Newest first; the cursor is `<pushed at ms>.<row id>` of the last one shown. */
  manifests(name: string, tagged: boolean | undefined, limit: number, last: string): Page<object> {
    const repoId = this.repoId(name);
    const cursor = /^(\d+)\.(\d+)$/.exec(last);
    const before = cursor ? { at: Number(cursor[1]), id: Number(cursor[2]) } : { at: Number.MAX_SAFE_INTEGER, id: 0 };
    const rows = this.queries.manifests(repoId, before, tagged, limit + 1);
    const items = rows.slice(0, limit).map((m) => ({
      digest: m.digest,
      mediaType: m.mediaType,
      kind: kindOf(m),
      artifactType: artifactTypeOf(m),
      subject: m.subject,
      tags: this.queries.tagsOf(repoId, m.digest),
      platforms: this.platforms(m),
      sizeBytes: this.sizeBytes(repoId, m),
      pushedAt: iso(m.createdAt),
      referrerCount: this.queries.referrerCount(repoId, m.digest),
    }));
    const end = rows[limit - 1];
    return { items, next: rows.length > limit && end ? `${end.createdAt}.${end.id}` : null };
  }

  /** What a manifest (by tag or digest) is, in full. */
  manifest(name: string, reference: string, visible: Visible): object {
    const repoId = this.repoId(name);
    const ref = ManifestService.parseReference(reference);
    const digest = ref?.digest?.value ?? (ref?.tag !== undefined ? this.queries.tagDigest(repoId, ref.tag) : undefined);
    const m = digest === undefined ? undefined : this.queries.manifest(repoId, digest);
    if (!m) throw oci('MANIFEST_UNKNOWN', `manifest ${reference} is unknown to repository "${name}"`, { reference });
    const kind = kindOf(m);
    const history = json<HistoryEntry[] | null>(m.history, null);
    const details = json<Record<string, unknown> | null>(m.details, null);
    const layers = kind === 'index' ? null : this.queries.layers(m.id);
    let layerIndex = 0;
    return {
      repository: name,
      digest: m.digest,
      mediaType: m.mediaType,
      kind,
      artifactType: artifactTypeOf(m),
      subject: m.subject,
      tags: this.queries.tagsOf(repoId, m.digest),
      pushedAt: iso(m.createdAt),
      sizeBytes: this.sizeBytes(repoId, m),
      annotations: json<Record<string, string>>(m.annotations, {}),
      verification: kind === 'image' ? m.verification : null,
      config:
        kind === 'image'
          ? {
              digest: m.configDigest,
              mediaType: m.configMediaType,
              size: m.configSize,
              created: m.created,
              author: m.author,
              os: m.os,
              architecture: m.architecture,
              variant: m.variant,
              entrypoint: details?.entrypoint ?? null,
              cmd: details?.cmd ?? null,
              env: details?.env ?? null,
              workingDir: details?.workingDir ?? null,
              user: details?.user ?? null,
              labels: details?.labels ?? {},
              exposedPorts: details?.exposedPorts ?? [],
            }
          : null,
      layers:
        layers?.map((l) => ({
          index: l.position,
          digest: l.digest,
          diffId: kind === 'image' ? l.diffId : null,
          mediaType: l.mediaType,
          size: l.size,
          uncompressedSize: kind === 'image' ? (l.format === 'none' ? l.size : l.uncompressedSize) : null,
          createdBy: kind === 'image' ? (l.createdBy ?? layerHistory(history ?? [], l.position + 1)[l.position] ?? null) : null,
          sharedWith: this.sharing(l.digest, name, m.digest, visible),
        })) ?? null,
      history:
        kind === 'image' && history
          ? history.map((h) => ({ ...h, layerIndex: h.emptyLayer ? null : layerIndex++ }))
          : null,
      platforms:
        kind === 'index'
          ? json<Array<Platform & { digest: string }>>(m.platforms, []).map((p) => ({
              ...p,
              sizeBytes: this.childBytes(repoId, p.digest),
            }))
          : null,
      referrers: this.queries.referrers(repoId, m.digest).map((r) => ({
        digest: r.digest,
        mediaType: r.mediaType,
        artifactType: r.artifactType,
        size: r.size,
        annotations: json<Record<string, string>>(r.annotations, {}),
      })),
    };
  }

  /** Which images (in repositories the caller may pull) use a layer; BLOB_UNKNOWN when none. */
  layer(digest: string, visible: Visible): object {
    const uses = this.queries.layerUses(digest).filter((u) => visible?.(u.repository) ?? true);
    if (uses.length === 0 || !tryParseDigest(digest)) {
      throw oci('BLOB_UNKNOWN', `no image the caller may pull uses layer ${digest}`, { digest });
    }
    const blob = this.queries.blobContents(digest);
    const first = uses[0]!;
    const repoIds = new Map<string, number>();
    const idOf = (repository: string) => {
      if (!repoIds.has(repository)) repoIds.set(repository, this.queries.repositoryId(repository)!);
      return repoIds.get(repository)!;
    };
    return {
      digest,
      size: blob?.size ?? first.size,
      uncompressedSize: blob?.format === 'none' ? blob.size : (blob?.uncompressedSize ?? null),
      diffId: blob?.format === 'none' ? digest : (blob?.diffId ?? first.diffId),
      mediaType: first.mediaType,
      images: uses.map((u) => ({
        repository: u.repository,
        digest: u.digest,
        tags: this.queries.tagsOf(idOf(u.repository), u.digest),
        index: u.position,
        platform: { os: u.os, architecture: u.architecture, variant: u.variant },
      })),
    };
  }

  /** Registry-wide totals and, for the repositories the caller may pull, their shares. */
  storage(visible: Visible): object {
    const totals = this.queries.totals();
    const usage = this.usage.usage()!;
    const mirror = this.extras.mirror();
    return {
      storedBytes: totals.storedBytes,
      logicalBytes: totals.logicalBytes,
      savedBytes: totals.logicalBytes - totals.storedBytes,
      blobCount: totals.blobCount,
      manifestCount: totals.manifestCount,
      repositoryCount: totals.repositoryCount,
      tagCount: totals.tagCount,
      perRepository: usage.repositories
        .filter((r) => visible?.(r.repository) ?? true)
        .map((r) => ({ name: r.repository, totalBytes: r.referencedBytes, uniqueBytes: r.uniqueBytes, sharedBytes: r.sharedBytes })),
      lastGc: this.extras.lastGc(),
      mirror: mirror && { ...mirror, hitRatio: mirror.hits + mirror.misses === 0 ? 0 : mirror.hits / (mirror.hits + mirror.misses) },
    };
  }

  /** `GET /v1/search` as the docker CLI reads it: 1-based pages of `n`. */
  search(q: string, n: number, page: number, visible: Visible): object {
    const names = this.queries.search(q).filter((name) => visible?.(name) ?? true);
    const results = names.slice((page - 1) * n, page * n).map((name) => ({
      name,
      description: this.row(name)?.description ?? '',
      star_count: 0,
      is_official: false,
      is_automated: false,
    }));
    return { num_results: names.length, num_pages: Math.ceil(names.length / n), page, page_size: n, query: q, results };
  }

  private row(name: string): RepositoryRow | undefined {
    const id = this.queries.repositoryId(name);
    return id === undefined ? undefined : this.queries.repository(id, name);
  }

  private summary(row: RepositoryRow) {
    return {
      name: row.name,
      tagCount: row.tagCount,
      manifestCount: row.manifestCount,
      sizeBytes: row.manifestBytes + row.blobBytes,
      lastPushedAt: iso(row.lastPushedAt),
      description: row.description,
    };
  }

  private repoId(name: string): number {
    const id = this.queries.repositoryId(name);
    if (id === undefined) throw nameUnknown(name);
    return id;
  }

  private platforms(m: ManifestRow): Platform[] {
    const kind = kindOf(m);
    if (kind === 'index') return json<Platform[]>(m.platforms, []).map(({ os, architecture, variant }) => ({ os, architecture, variant }));
    if (kind === 'image' && (m.os !== null || m.architecture !== null)) return [{ os: m.os, architecture: m.architecture, variant: m.variant }];
    return [];
  }

  /** What a pull downloads: an image's manifest, config and layers; an index's own bytes and its children's distinct ones. */
  private sizeBytes(repoId: number, m: ManifestRow): number {
    if (kindOf(m) !== 'index') return m.size + (m.contentBytes ?? 0);
    const children = this.queries.children(repoId, m.id);
    return m.size + children.reduce((sum, c) => sum + c.size, 0) + this.queries.distinctBytes(children.map((c) => c.id));
  }

  private childBytes(repoId: number, digest: string): number | null {
    const child = this.queries.manifest(repoId, digest);
    return child ? child.size + (child.contentBytes ?? 0) : null;
  }

  /** Other image manifests (distinct digests) and other repositories, among the visible ones, using a layer. */
  private sharing(layer: string, repository: string, digest: string, visible: Visible): { images: number; repositories: number } {
    const images = new Set<string>();
    const repositories = new Set<string>();
    for (const use of this.queries.layerUses(layer)) {
      if (!(visible?.(use.repository) ?? true)) continue;
      if (use.digest !== digest) images.add(use.digest);
      if (use.repository !== repository) repositories.add(use.repository);
    }
    return { images: images.size, repositories: repositories.size };
  }
}

function kindOf(m: ManifestRow): ManifestKind {
  return m.kind ?? (INDEX_TYPES.includes(m.mediaType) ? 'index' : 'artifact');
}

/** An image's artifact type is null; an artifact's is its explicit one or its config's media type. */
function artifactTypeOf(m: ManifestRow): string | null {
  return kindOf(m) === 'image' ? null : m.artifactType;
}

function nameUnknown(name: string) {
  return oci('NAME_UNKNOWN', `repository "${name}" is not known`, { name });
}
