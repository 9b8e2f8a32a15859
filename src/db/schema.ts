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
  // Image contents. For each blob, what it holds uncompressed, computed while it uploads
  // or when first needed (NULL layer_format: not yet): 'gzip' or 'zstd' with diff_id and
  // uncompressed_size (both NULL, and layer_error saying why, when not computed), 'none'
  // (not compressed: diff_id is the blob's own digest) or 'invalid' (not a valid
  // compressed stream; layer_error says why). Per manifest, what it is (`images`: kind,
  // config fields, platforms, description) and its layers in order (`image_layers`), so
  // which images share a layer is one indexed query; both go with their manifest. And
  // search: repository names and the distinct tag names, indexed by trigram (substring
  // matching), kept by triggers.
  `
  ALTER TABLE blobs ADD COLUMN layer_format TEXT;
  ALTER TABLE blobs ADD COLUMN diff_id TEXT;
  ALTER TABLE blobs ADD COLUMN uncompressed_size INTEGER;
  ALTER TABLE blobs ADD COLUMN layer_error TEXT;

  CREATE TABLE images (
    manifest_id INTEGER PRIMARY KEY REFERENCES manifests(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('image', 'index', 'artifact')),
    config_digest TEXT,
    config_media_type TEXT,
    config_size INTEGER,
    -- 0 while the config has not been read (a mirrored image's config arrives after its manifest)
    config_read INTEGER NOT NULL DEFAULT 0,
    created TEXT,
    author TEXT,
    os TEXT,
    architecture TEXT,
    variant TEXT,
    -- JSON: entrypoint, cmd, env, workingDir, user, labels, exposedPorts
    details TEXT,
    -- JSON: the config's history entries
    history TEXT,
    -- JSON, indexes only: their children's platforms
    platforms TEXT,
    description TEXT,
    -- config and layer bytes as the descriptors state them (what a pull downloads)
    content_bytes INTEGER NOT NULL,
    -- how its layers compared with the config's diff_ids: 'verified', 'mismatch',
    -- 'unverifiable', 'unchecked'; NULL while a mirrored image's layers are still arriving
    verification TEXT
  );

  CREATE TABLE image_layers (
    manifest_id INTEGER NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    diff_id TEXT,
    created_by TEXT,
    PRIMARY KEY (manifest_id, position)
  ) WITHOUT ROWID;
  CREATE INDEX image_layers_digest ON image_layers(digest);

  CREATE VIRTUAL TABLE repository_search USING fts5(name, tokenize = 'trigram');
  INSERT INTO repository_search (rowid, name) SELECT id, name FROM repositories;
  CREATE TRIGGER repositories_searchable AFTER INSERT ON repositories
  BEGIN
    INSERT INTO repository_search (rowid, name) VALUES (NEW.id, NEW.name);
  END;
  CREATE TRIGGER repositories_unsearchable AFTER DELETE ON repositories
  BEGIN
    DELETE FROM repository_search WHERE rowid = OLD.id;
  END;

  -- Tag names repeat across repositories (latest, 1.0): each is indexed once. Names no tag
  -- uses any more are removed by garbage collection.
  CREATE TABLE tag_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
  );
  CREATE VIRTUAL TABLE tag_search USING fts5(name, tokenize = 'trigram');
  CREATE TRIGGER tag_names_searchable AFTER INSERT ON tag_names
  BEGIN
    INSERT INTO tag_search (rowid, name) VALUES (NEW.id, NEW.name);
  END;
  CREATE TRIGGER tag_names_unsearchable AFTER DELETE ON tag_names
  BEGIN
    DELETE FROM tag_search WHERE rowid = OLD.id;
  END;
  INSERT INTO tag_names (name) SELECT DISTINCT name FROM tags;
  CREATE TRIGGER tags_named AFTER INSERT ON tags
    WHEN NOT EXISTS (SELECT 1 FROM tag_names WHERE name = NEW.name)
  BEGIN
    INSERT INTO tag_names (name) VALUES (NEW.name);
  END;
  CREATE INDEX tags_name ON tags(name);
  `,
  // Web UI sign-in sessions (src/auth/sessions.ts): the SHA-256 of each session's cookie
  // value (never the value itself), its user, its CSRF token, a fingerprint of the user's
  // password hash at sign-in (a changed password ends the session) and its expiry.
  `
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX sessions_expiry ON sessions (expires_at);
  `,
  // How many bytes each upload session held after its last request: a session whose
  // data file is missing or shorter than that lost data and is never reported as empty.
  `
  ALTER TABLE uploads ADD COLUMN received INTEGER NOT NULL DEFAULT 0;
  `,
];
