import type Database from 'better-sqlite3';
import type { LayerContents, LayerFormat } from '../blobstore/layer-thread.js';

/** One layer of an image as indexed: its descriptor, the config's diff_id and history line for it. */
export interface ImageLayerRow {
  position: number;
  digest: string;
  mediaType: string;
  size: number;
  diffId: string | null;
  createdBy: string | null;
}

export type ManifestKind = 'image' | 'index' | 'artifact';

/** What the index knows of a manifest beyond its bytes (the `images` and `image_layers` rows). */
export interface ImageRecord {
  kind: ManifestKind;
  configDigest: string | null;
  configMediaType: string | null;
  configSize: number | null;
  /** Whether the config's fields below come from the config (false while it is not in the store). */
  configRead: boolean;
  created: string | null;
  author: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  /** JSON texts (see the schema). */
  details: string | null;
  history: string | null;
  platforms: string | null;
  description: string | null;
  contentBytes: number;
  verification: string | null;
  layers: ImageLayerRow[];
}

/**
 * The index's image rows: what each manifest is (`images`, `image_layers`) and what each
 * blob holds uncompressed (columns of `blobs`), on the connection of the MetadataIndex
 * that owns this, whose transactions `put` joins.
 */
export class ImageRows {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      upsert: db.prepare(
        `INSERT OR REPLACE INTO images (manifest_id, kind, config_digest, config_media_type, config_size, config_read,
           created, author, os, architecture, variant, details, history, platforms, description, content_bytes, verification)
         VALUES (@id, @kind, @configDigest, @configMediaType, @configSize, @configRead,
           @created, @author, @os, @architecture, @variant, @details, @history, @platforms, @description, @contentBytes, @verification)`,
      ),
      deleteLayers: db.prepare('DELETE FROM image_layers WHERE manifest_id = ?'),
      insertLayer: db.prepare(
        `INSERT INTO image_layers (manifest_id, position, digest, media_type, size, diff_id, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      manifestExists: db.prepare<[number], { one: number }>('SELECT 1 AS one FROM manifests WHERE id = ?'),
      description: db.prepare<[string, string], { description: string | null }>(
        `SELECT i.description FROM repositories r JOIN manifests m ON m.repo_id = r.id JOIN images i ON i.manifest_id = m.id
         WHERE r.name = ? AND m.digest = ?`,
      ),
      unindexed: db.prepare<[number, number], { id: number; repository: string; content: Buffer; mediaType: string }>(
        `SELECT m.id, r.name AS repository, m.content, m.media_type AS mediaType FROM manifests m
         JOIN repositories r ON r.id = m.repo_id
         WHERE m.id > ? AND NOT EXISTS (SELECT 1 FROM images i WHERE i.manifest_id = m.id) ORDER BY m.id LIMIT ?`,
      ),
      layerContents: db.prepare<[string], { format: LayerFormat | null; diffId: string | null; size: number | null; error: string | null }>(
        'SELECT layer_format AS format, diff_id AS diffId, uncompressed_size AS size, layer_error AS error FROM blobs WHERE digest = ?',
      ),
      setLayerContents: db.prepare(
        `UPDATE blobs SET layer_format = ?, diff_id = ?, uncompressed_size = ?, layer_error = ?
         WHERE digest = ? AND layer_format IS NULL`,
      ),
    };
  }

  /** Writes (or rewrites) the rows of manifest `id`; call it inside a transaction. */
  put(id: number, record: ImageRecord): void {
    const { layers, ...fields } = record;
    this.stmt.upsert.run({ id, ...fields, configRead: fields.configRead ? 1 : 0 });
    this.stmt.deleteLayers.run(id);
    for (const l of layers) this.stmt.insertLayer.run(id, l.position, l.digest, l.mediaType, l.size, l.diffId, l.createdBy);
  }

  /**
   * Rewrites what manifests are (a config arrived, layers were checked), in one
   * transaction, skipping manifests gone meanwhile; returns how many were written. Not
   * synced: the rows can always be derived again.
   */
  update(entries: ReadonlyArray<readonly [number, ImageRecord]>): number {
    return this.db.transaction(() => {
      let written = 0;
      for (const [id, image] of entries) {
        if (this.stmt.manifestExists.get(id) === undefined) continue;
        this.put(id, image);
        written++;
      }
      return written;
    }).immediate();
  }

  /** Manifests not indexed yet (stored before the image index existed), oldest first, after row `after`. */
  unindexed(after: number, limit: number): Array<{ id: number; repository: string; content: Buffer; mediaType: string }> {
    return this.stmt.unindexed.all(after, limit);
  }

  /** The description of manifest `digest` of `repo`, as indexed. */
  description(repo: string, digest: string): string | null {
    return this.stmt.description.get(repo, digest)?.description ?? null;
  }

  /** What a stored blob holds uncompressed, if computed. */
  layerContents(digest: string): LayerContents | undefined {
    const row = this.stmt.layerContents.get(digest);
    if (!row || row.format === null) return undefined;
    return { format: row.format, digest: row.diffId ?? undefined, size: row.size ?? undefined, error: row.error ?? undefined };
  }

  /**
   * Remembers what a blob holds uncompressed (unless known already); false when the blob
   * has no row (yet). Not synced: it can always be computed again.
   */
  setLayerContents(digest: string, contents: LayerContents): boolean {
    const { format, digest: diffId, size, error } = contents;
    return this.stmt.setLayerContents.run(format, diffId ?? null, size ?? null, error ?? null, digest).changes > 0;
  }
}
