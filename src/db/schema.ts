/**
 * Index schema, applied in order; `user_version` records how many have run.
 * Append new migrations, never edit an applied one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );

  -- The global content-addressed store: one row per blob file under blobs/.
  CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- A repository may only serve blobs it was given (pushed or mounted).
  CREATE TABLE repo_blobs (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX repo_blobs_digest ON repo_blobs(digest);

  CREATE TABLE manifests (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    size INTEGER NOT NULL,
    content BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (repo_id, digest)
  );
  CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;

  -- What a manifest points at: its config and layers (kind 'blob') or an index's children ('manifest').
  CREATE TABLE manifest_refs (
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (manifest_id, kind, digest)
  ) WITHOUT ROWID;
  CREATE INDEX manifest_refs_digest ON manifest_refs(digest);

  CREATE TABLE tags (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name)
  ) WITHOUT ROWID;
  CREATE INDEX tags_digest ON tags(repo_id, digest);

  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // Storage lifecycle: when each manifest lost its last tag (NULL while tagged), kept by
  // triggers so every writer of tags stays unaware of it. Never-tagged manifests count
  // from their push. The time is milliseconds since the epoch, like every other column.
  `
  ALTER TABLE manifests ADD COLUMN untagged_at INTEGER;
  UPDATE manifests SET untagged_at = created_at
    WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = manifests.repo_id AND t.digest = manifests.digest);

  CREATE TRIGGER manifests_untagged_on_insert AFTER INSERT ON manifests
    WHEN NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = NEW.repo_id AND t.digest = NEW.digest)
  BEGIN
    UPDATE manifests SET untagged_at = NEW.created_at WHERE id = NEW.id;
  END;

  CREATE TRIGGER tags_tagged_on_insert AFTER INSERT ON tags
  BEGIN
    UPDATE manifests SET untagged_at = NULL WHERE repo_id = NEW.repo_id AND digest = NEW.digest;
  END;

  CREATE TRIGGER tags_moved AFTER UPDATE OF digest ON tags WHEN OLD.digest <> NEW.digest
  BEGIN
    UPDATE manifests SET untagged_at = NULL WHERE repo_id = NEW.repo_id AND digest = NEW.digest;
    UPDATE manifests SET untagged_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
      WHERE repo_id = OLD.repo_id AND digest = OLD.digest
        AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = OLD.repo_id AND t.digest = OLD.digest);
  END;

  CREATE TRIGGER tags_untagged_on_delete AFTER DELETE ON tags
  BEGIN
    UPDATE manifests SET untagged_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
      WHERE repo_id = OLD.repo_id AND digest = OLD.digest
        AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = OLD.repo_id AND t.digest = OLD.digest);
  END;
  `,
  // Authentication: Berth's own users (bcrypt hashes) and their groups.
  `
  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE user_groups (
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE ON UPDATE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_name, group_name)
  ) WITHOUT ROWID;
  `,
  // Operations: the row /readyz writes to prove the index is writable, and the durable
  // queue of webhook deliveries (one row per event and endpoint, delivered in id order
  // per endpoint and repository).
  `
  CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
  );

  CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    repository TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT
  );
  CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint, repository, id);
  `,
  // Pull-through cache bookkeeping (src/proxy): when each mirrored tag was last checked
  // against its upstream, and when each mirrored manifest was last pulled.
  `
  CREATE TABLE proxy_tags (
    repo TEXT NOT NULL,
    tag TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (repo, tag)
  ) WITHOUT ROWID;

  CREATE TABLE proxy_pulls (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    pulled_at INTEGER NOT NULL,
    PRIMARY KEY (repo, digest)
  ) WITHOUT ROWID;
  `,
  // How many bytes each upload session held after its last request: a session whose
  // data file is missing or shorter than that lost data and is never reported as empty.
  `
  ALTER TABLE uploads ADD COLUMN received INTEGER NOT NULL DEFAULT 0;
  `,
];
