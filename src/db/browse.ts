import type Database from 'better-sqlite3';
import type { ManifestKind } from './images.js';

/** A repository's figures for listings. */
export interface RepositoryRow {
  id: number;
  name: string;
  tagCount: number;
  manifestCount: number;
  manifestBytes: number;
  blobBytes: number;
  lastPushedAt: number | null;
  description: string | null;
}

/** A manifest with what the index knows of it (`images`), for tag and manifest listings. */
export interface ManifestRow {
  id: number;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  subject: string | null;
  annotations: string | null;
  size: number;
  content: Buffer;
  createdAt: number;
  kind: ManifestKind | null;
  configDigest: string | null;
  configMediaType: string | null;
  configSize: number | null;
  created: string | null;
  author: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  details: string | null;
  history: string | null;
  platforms: string | null;
  contentBytes: number | null;
  verification: string | null;
}

export interface TagRow extends ManifestRow {
  tag: string;
  updatedAt: number;
}

export interface LayerRow {
  position: number;
  digest: string;
  mediaType: string;
  size: number;
  diffId: string | null;
  createdBy: string | null;
  uncompressedDigest: string | null;
  uncompressedSize: number | null;
  format: string | null;
}

/** An image using a layer: where, at which position, for which platform. */
export interface LayerUse {
  repository: string;
  manifestId: number;
  digest: string;
  position: number;
  mediaType: string;
  size: number;
  diffId: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
}

const MANIFEST_COLUMNS = `m.id, m.digest, m.media_type AS mediaType, m.artifact_type AS artifactType, m.subject,
  m.annotations, m.size, m.content, m.created_at AS createdAt, i.kind, i.config_digest AS configDigest,
  i.config_media_type AS configMediaType, i.config_size AS configSize, i.created, i.author, i.os, i.architecture,
  i.variant, i.details, i.history, i.platforms, i.content_bytes AS contentBytes, i.verification`;

/**
 * The read queries of the browse API and docker search, over the index's tables (see
 * schema.ts): repositories with their figures, tags and manifests with what each is,
 * layers and the images sharing them, and search by repository or tag name.
 */
export class BrowseQueries {
  private readonly stmt;

  constructor(db: Database.Database) {
    // Search: a phrase of at least three characters goes through the trigram indexes;
    // shorter ones are too common for an index to help and are matched by scanning.
    const matching = (repoMatch: string, tagMatch: string) =>
      `SELECT r.name FROM repositories r WHERE r.id IN (
         SELECT ${repoMatch}
         UNION
         SELECT t.repo_id FROM tag_names n JOIN tags t ON t.name = n.name WHERE n.${tagMatch}
       ) ORDER BY r.name`;
    this.stmt = {
      repositoryId: db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE name = ?'),
      names: db.prepare<[string, number], string>('SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?').pluck(),
      search: db
        .prepare<[{ phrase: string }], string>(
          matching(
            'rowid FROM repository_search WHERE repository_search MATCH @phrase',
            'id IN (SELECT rowid FROM tag_search WHERE tag_search MATCH @phrase)',
          ),
        )
        .pluck(),
      searchShort: db
        .prepare<[{ q: string }], string>(
          matching('id FROM repositories WHERE instr(lower(name), lower(@q)) > 0', 'id IN (SELECT id FROM tag_names WHERE instr(lower(name), lower(@q)) > 0)'),
        )
        .pluck(),
      repository: db.prepare<[{ id: number }], Omit<RepositoryRow, 'id' | 'name'>>(
        `SELECT (SELECT COUNT(*) FROM tags WHERE repo_id = @id) AS tagCount,
                (SELECT COUNT(*) FROM manifests WHERE repo_id = @id) AS manifestCount,
                (SELECT COALESCE(SUM(size), 0) FROM manifests WHERE repo_id = @id) AS manifestBytes,
                (SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN (
                   SELECT f.digest FROM manifests m JOIN manifest_refs f ON f.manifest_id = m.id
                   WHERE m.repo_id = @id AND f.kind = 'blob')) AS blobBytes,
                (SELECT MAX(at) FROM (SELECT MAX(updated_at) AS at FROM tags WHERE repo_id = @id
                                      UNION ALL SELECT MAX(created_at) FROM manifests WHERE repo_id = @id)) AS lastPushedAt,
                (SELECT i.description FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
                   JOIN images i ON i.manifest_id = m.id
                 WHERE t.repo_id = @id ORDER BY t.updated_at DESC, t.name LIMIT 1) AS description`,
      ),
      tags: db.prepare<[number, string, number], TagRow>(
        `SELECT t.name AS tag, t.updated_at AS updatedAt, ${MANIFEST_COLUMNS}
         FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest LEFT JOIN images i ON i.manifest_id = m.id
         WHERE t.repo_id = ? AND t.name > ? ORDER BY t.name LIMIT ?`,
      ),
      manifests: db.prepare<[{ repo: number; at: number; id: number; tagged: number | null; limit: number }], ManifestRow>(
        `SELECT ${MANIFEST_COLUMNS} FROM manifests m LEFT JOIN images i ON i.manifest_id = m.id
         WHERE m.repo_id = @repo AND (m.created_at < @at OR (m.created_at = @at AND m.id < @id))
           AND (@tagged IS NULL OR (m.untagged_at IS NULL) = (@tagged = 1))
         ORDER BY m.created_at DESC, m.id DESC LIMIT @limit`,
      ),
      manifest: db.prepare<[number, string], ManifestRow>(
        `SELECT ${MANIFEST_COLUMNS} FROM manifests m LEFT JOIN images i ON i.manifest_id = m.id WHERE m.repo_id = ? AND m.digest = ?`,
      ),
      tagDigest: db.prepare<[number, string], string>('SELECT digest FROM tags WHERE repo_id = ? AND name = ?').pluck(),
      tagsOf: db.prepare<[number, string], string>('SELECT name FROM tags WHERE repo_id = ? AND digest = ? ORDER BY name').pluck(),
      pushedAt: db.prepare<[number, string], number>('SELECT MAX(updated_at) FROM tags WHERE repo_id = ? AND digest = ?').pluck(),
      referrerCount: db.prepare<[number, string], number>('SELECT COUNT(*) FROM manifests WHERE repo_id = ? AND subject = ?').pluck(),
      children: db.prepare<[number, number], { id: number; digest: string; size: number; contentBytes: number | null }>(
        `SELECT c.id, c.digest, c.size, i.content_bytes AS contentBytes FROM manifest_refs f
         JOIN manifests c ON c.repo_id = ? AND c.digest = f.digest LEFT JOIN images i ON i.manifest_id = c.id
         WHERE f.manifest_id = ? AND f.kind = 'manifest'`,
      ),
      // The distinct config and layer bytes of a set of manifests (an index's children).
      distinctBytes: db.prepare<[{ ids: string }], number>(
        `SELECT COALESCE(SUM(size), 0) FROM (
           SELECT digest, size FROM image_layers WHERE manifest_id IN (SELECT value FROM json_each(@ids))
           UNION SELECT config_digest, config_size FROM images WHERE manifest_id IN (SELECT value FROM json_each(@ids)) AND config_digest IS NOT NULL)`,
      ).pluck(),
      layers: db.prepare<[number], LayerRow>(
        `SELECT l.position, l.digest, l.media_type AS mediaType, l.size, l.diff_id AS diffId, l.created_by AS createdBy,
                b.diff_id AS uncompressedDigest, b.uncompressed_size AS uncompressedSize, b.layer_format AS format
         FROM image_layers l LEFT JOIN blobs b ON b.digest = l.digest WHERE l.manifest_id = ? ORDER BY l.position`,
      ),
      layerUses: db.prepare<[string], LayerUse>(
        `SELECT r.name AS repository, m.id AS manifestId, m.digest, l.position, l.media_type AS mediaType, l.size,
                l.diff_id AS diffId, i.os, i.architecture, i.variant
         FROM image_layers l JOIN manifests m ON m.id = l.manifest_id JOIN repositories r ON r.id = m.repo_id
         JOIN images i ON i.manifest_id = m.id
         WHERE l.digest = ? AND i.kind = 'image' ORDER BY r.name, m.created_at DESC, l.position`,
      ),
      blobContents: db.prepare<[string], { size: number; diffId: string | null; uncompressedSize: number | null; format: string | null }>(
        'SELECT size, diff_id AS diffId, uncompressed_size AS uncompressedSize, layer_format AS format FROM blobs WHERE digest = ?',
      ),
      referrers: db.prepare<[number, string], { digest: string; mediaType: string; artifactType: string | null; size: number; annotations: string | null }>(
        `SELECT digest, media_type AS mediaType, artifact_type AS artifactType, size, annotations FROM manifests
         WHERE repo_id = ? AND subject = ? ORDER BY created_at, digest`,
      ),
      totals: db.prepare<[], { storedBytes: number; logicalBytes: number; blobCount: number; manifestCount: number; repositoryCount: number; tagCount: number }>(
        `SELECT (SELECT COALESCE(SUM(size), 0) FROM blobs b WHERE EXISTS (
                   SELECT 1 FROM manifest_refs f WHERE f.digest = b.digest AND f.kind = 'blob')) AS storedBytes,
                (SELECT COALESCE(SUM(b.size), 0) FROM manifest_refs f JOIN blobs b ON b.digest = f.digest WHERE f.kind = 'blob') AS logicalBytes,
                (SELECT COUNT(*) FROM blobs) AS blobCount,
                (SELECT COUNT(*) FROM manifests) AS manifestCount,
                (SELECT COUNT(*) FROM repositories) AS repositoryCount,
                (SELECT COUNT(*) FROM tags) AS tagCount`,
      ),
    };
  }

  repositoryId(name: string): number | undefined {
    return this.stmt.repositoryId.get(name)?.id;
  }

  /** Repository names after `after`, in order. */
  names(after: string, limit: number): string[] {
    return this.stmt.names.all(after, limit);
  }

  /**
   * Every repository whose name, or one of whose tags, contains `q` (case-insensitive), in
   * name order.
   */
  search(q: string): string[] {
    if ([...q].length >= 3) return this.stmt.search.all({ phrase: `"${q.replace(/"/g, '""')}"` });
    return this.stmt.searchShort.all({ q });
  }

  repository(id: number, name: string): RepositoryRow {
    return { id, name, ...this.stmt.repository.get({ id })! };
  }

  tags(repoId: number, after: string, limit: number): TagRow[] {
    return this.stmt.tags.all(repoId, after, limit);
  }

  /** Newest first, before the cursor (`at`, `id`); `tagged`: only tagged (true) or untagged (false) ones. */
  manifests(repoId: number, before: { at: number; id: number }, tagged: boolean | undefined, limit: number): ManifestRow[] {
    return this.stmt.manifests.all({ repo: repoId, at: before.at, id: before.id, tagged: tagged === undefined ? null : tagged ? 1 : 0, limit });
  }

  manifest(repoId: number, digest: string): ManifestRow | undefined {
    return this.stmt.manifest.get(repoId, digest);
  }

  tagDigest(repoId: number, tag: string): string | undefined {
    return this.stmt.tagDigest.get(repoId, tag);
  }

  tagsOf(repoId: number, digest: string): string[] {
    return this.stmt.tagsOf.all(repoId, digest);
  }

  /** When a tag last moved to the manifest, else null. */
  taggedAt(repoId: number, digest: string): number | null {
    return this.stmt.pushedAt.get(repoId, digest) ?? null;
  }

  referrerCount(repoId: number, digest: string): number {
    return this.stmt.referrerCount.get(repoId, digest)!;
  }

  children(repoId: number, manifestId: number): Array<{ id: number; digest: string; size: number; contentBytes: number | null }> {
    return this.stmt.children.all(repoId, manifestId);
  }

  /** Bytes of the distinct configs and layers of `manifestIds`. */
  distinctBytes(manifestIds: readonly number[]): number {
    return this.stmt.distinctBytes.get({ ids: JSON.stringify(manifestIds) })!;
  }

  layers(manifestId: number): LayerRow[] {
    return this.stmt.layers.all(manifestId);
  }

  /** The images (in any repository) that use layer `digest`. */
  layerUses(digest: string): LayerUse[] {
    return this.stmt.layerUses.all(digest);
  }

  blobContents(digest: string) {
    return this.stmt.blobContents.get(digest);
  }

  referrers(repoId: number, subject: string) {
    return this.stmt.referrers.all(repoId, subject);
  }

  totals() {
    return this.stmt.totals.get()!;
  }
}
