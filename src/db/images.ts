import type Database from 'better-sqlite3';

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

/** The statements that write `images` and `image_layers`, on the connection of the transaction they join. */
export class ImageRows {
  private readonly stmt;

  constructor(db: Database.Database) {
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
    };
  }

  /** Writes (or rewrites) the rows of manifest `id`; call it inside a transaction. */
  put(id: number, record: ImageRecord): void {
    const { layers, ...fields } = record;
    this.stmt.upsert.run({ id, ...fields, configRead: fields.configRead ? 1 : 0 });
    this.stmt.deleteLayers.run(id);
    for (const l of layers) this.stmt.insertLayer.run(id, l.position, l.digest, l.mediaType, l.size, l.diffId, l.createdBy);
  }
}
