import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobFiles } from '../blobstore/files.js';
import type { MetadataIndex } from '../db/index.js';
import { tryParseDigest } from '../digest.js';
import { walkBlobFiles } from './collector.js';

export type ProblemKind =
  /** A blob file whose bytes do not hash to its name. */
  | 'corrupt-blob'
  /** An index row whose blob file is missing. */
  | 'missing-blob'
  /** A blob file whose size differs from its row. */
  | 'blob-size'
  /** A manifest whose stored bytes do not hash to its digest. */
  | 'corrupt-manifest'
  /** A manifest referencing a blob the store does not have. */
  | 'manifest-blob-missing'
  /** An index referencing a manifest its repository does not have. */
  | 'manifest-child-missing'
  /** A tag pointing at no manifest. */
  | 'dangling-tag';

export interface Problem {
  kind: ProblemKind;
  digest: string;
  repository?: string;
  tag?: string;
  detail: string;
}

export interface FsckReport {
  blobFiles: number;
  bytesHashed: number;
  manifests: number;
  problems: Problem[];
  /** Files under blobs/ without an index row: harmless, removed by gc after the grace period. */
  orphans: { digest: string; size: number }[];
  /** Files under blobs/ that are not named like a blob: reported, never touched. */
  strays: string[];
  repaired: {
    /** Corrupt blob files moved to quarantine/ (path there). */
    quarantined: string[];
    /** Blob rows (and their links) removed because their bytes are gone or wrong. */
    blobRows: string[];
    manifests: { repository: string; digest: string }[];
    tags: { repository: string; tag: string; digest: string }[];
  } | undefined;
}

/**
 * Checks the store against the index both ways: re-hashes every blob file, finds rows
 * without files, manifests whose bytes or references are wrong, and dangling tags.
 * With `repair`, corrupt files are moved to quarantine/, rows of missing or corrupt
 * blobs are removed, then every manifest that can no longer be pulled completely (and
 * recursively the indexes that list it) together with its tags, leaving the index
 * consistent. Repairs re-check inside their transactions, so a registry may keep
 * running on the directory; a blob re-pushed meanwhile is kept.
 */
export async function fsck(files: BlobFiles, index: MetadataIndex, options: { repair?: boolean } = {}): Promise<FsckReport> {
  const db = index.database;
  const report: FsckReport = {
    blobFiles: 0,
    bytesHashed: 0,
    manifests: 0,
    problems: [],
    orphans: [],
    strays: [],
    repaired: options.repair ? { quarantined: [], blobRows: [], manifests: [], tags: [] } : undefined,
  };
  const rowSize = db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?');
  const corrupt: { digest: string; path: string }[] = [];
  const seen = new Set<string>();

  for await (const { path, digest } of walkBlobFiles(files.blobsDir)) {
    if (!digest) {
      report.strays.push(path);
      continue;
    }
    report.blobFiles++;
    seen.add(digest.value);
    let hashed: { hex: string; size: number };
    try {
      hashed = await files.writer.fileDigest(path, digest.algorithm);
    } catch {
      continue; // removed meanwhile (gc)
    }
    report.bytesHashed += hashed.size;
    const actual = `${digest.algorithm}:${hashed.hex}`;
    const row = rowSize.get(digest.value);
    if (actual !== digest.value) {
      report.problems.push({ kind: 'corrupt-blob', digest: digest.value, detail: `file hashes to ${actual}` });
      corrupt.push({ digest: digest.value, path });
    } else if (row === undefined) {
      report.orphans.push({ digest: digest.value, size: hashed.size });
    } else if (row.size !== hashed.size) {
      report.problems.push({ kind: 'blob-size', digest: digest.value, detail: `row says ${row.size} bytes, file has ${hashed.size}` });
      corrupt.push({ digest: digest.value, path });
    }
  }

  const missing: string[] = [];
  for (const { digest } of db.prepare<[], { digest: string }>('SELECT digest FROM blobs').all()) {
    if (seen.has(digest)) continue;
    const parsed = tryParseDigest(digest);
    if (parsed && existsSync(files.blobPath(parsed))) continue; // published meanwhile
    report.problems.push({ kind: 'missing-blob', digest, detail: 'the index lists it but its file is missing' });
    missing.push(digest);
  }

  const corruptManifests: number[] = [];
  const manifests = db.prepare<[], { id: number; repository: string; digest: string; content: Buffer; size: number }>(
    'SELECT m.id, r.name AS repository, m.digest, m.content, m.size FROM manifests m JOIN repositories r ON r.id = m.repo_id',
  );
  for (const m of manifests.iterate()) {
    report.manifests++;
    const parsed = tryParseDigest(m.digest);
    const ok = parsed && createHash(parsed.algorithm).update(m.content).digest('hex') === parsed.hex && m.size === m.content.length;
    if (!ok) {
      report.problems.push({ kind: 'corrupt-manifest', digest: m.digest, repository: m.repository, detail: 'stored bytes do not match' });
      corruptManifests.push(m.id);
    }
  }
  const broken = new Set([...corrupt.map((c) => c.digest), ...missing]);
  for (const row of danglingRefs(index)) {
    if (row.kind === 'blob' && broken.has(row.ref)) continue; // reported above
    report.problems.push({
      kind: row.kind === 'blob' ? 'manifest-blob-missing' : 'manifest-child-missing',
      digest: row.digest,
      repository: row.repository,
      detail: `references ${row.ref}, which is missing`,
    });
  }
  for (const tag of danglingTags(index)) {
    report.problems.push({ kind: 'dangling-tag', digest: tag.digest, repository: tag.repository, tag: tag.tag, detail: 'points at no manifest' });
  }

  if (report.repaired) await repair(files, index, report.repaired, corrupt, missing, corruptManifests);
  return report;
}

async function repair(
  files: BlobFiles,
  index: MetadataIndex,
  repaired: NonNullable<FsckReport['repaired']>,
  corrupt: { digest: string; path: string }[],
  missing: string[],
  corruptManifests: number[],
): Promise<void> {
  const db = index.database;
  const quarantine = join(files.root, 'quarantine');
  const gone: string[] = [...missing];
  for (const { digest, path } of corrupt) {
    await mkdir(quarantine, { recursive: true });
    const target = join(quarantine, `${digest.replace(':', '-')}-${Date.now()}`);
    try {
      await rename(path, target);
      repaired.quarantined.push(target);
    } catch {
      // gone already
    }
    gone.push(digest);
  }
  const deleteLinks = db.prepare('DELETE FROM repo_blobs WHERE digest = ?');
  const deleteBlob = db.prepare('DELETE FROM blobs WHERE digest = ?');
  const manifestById = db.prepare<[number], { repository: string; digest: string; repoId: number }>(
    'SELECT r.name AS repository, m.digest, m.repo_id AS repoId FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE m.id = ?',
  );
  const tagsOf = db.prepare<[number, string], { name: string }>('SELECT name FROM tags WHERE repo_id = ? AND digest = ?');
  const deleteTagsOf = db.prepare('DELETE FROM tags WHERE repo_id = ? AND digest = ?');
  const deleteManifest = db.prepare('DELETE FROM manifests WHERE id = ?');
  const deleteTag = db.prepare('DELETE FROM tags WHERE repo_id = ? AND name = ?');

  const removeManifest = (id: number) => {
    const m = manifestById.get(id);
    if (!m) return;
    for (const t of tagsOf.all(m.repoId, m.digest)) repaired.tags.push({ repository: m.repository, tag: t.name, digest: m.digest });
    deleteTagsOf.run(m.repoId, m.digest);
    deleteManifest.run(id);
    repaired.manifests.push({ repository: m.repository, digest: m.digest });
  };

  index.write(() => {
    for (const digest of gone) {
      const parsed = tryParseDigest(digest);
      // A good copy published since the check (a re-push) keeps its row.
      if (parsed && existsSync(files.blobPath(parsed))) continue;
      deleteLinks.run(digest);
      if (deleteBlob.run(digest).changes > 0) repaired.blobRows.push(digest);
    }
    for (const id of corruptManifests) removeManifest(id);
    // Whatever can no longer be pulled completely goes, then the indexes listing it, and so on.
    for (;;) {
      const dangling = danglingRefs(index);
      if (dangling.length === 0) break;
      for (const id of new Set(dangling.map((d) => d.id))) removeManifest(id);
    }
    for (const tag of danglingTags(index)) {
      deleteTag.run(tag.repoId, tag.tag);
      repaired.tags.push({ repository: tag.repository, tag: tag.tag, digest: tag.digest });
    }
  });
}

interface DanglingRef {
  id: number;
  repository: string;
  digest: string;
  ref: string;
  kind: 'blob' | 'manifest';
}

function danglingRefs(index: MetadataIndex): DanglingRef[] {
  return index.database
    .prepare<[], DanglingRef>(
      `SELECT m.id, repo.name AS repository, m.digest, r.digest AS ref, r.kind FROM manifest_refs r
       JOIN manifests m ON m.id = r.manifest_id JOIN repositories repo ON repo.id = m.repo_id
       WHERE (r.kind = 'blob' AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = r.digest))
          OR (r.kind = 'manifest' AND NOT EXISTS (SELECT 1 FROM manifests c WHERE c.repo_id = m.repo_id AND c.digest = r.digest))`,
    )
    .all();
}

function danglingTags(index: MetadataIndex): { repoId: number; repository: string; tag: string; digest: string }[] {
  return index.database
    .prepare<[], { repoId: number; repository: string; tag: string; digest: string }>(
      `SELECT t.repo_id AS repoId, repo.name AS repository, t.name AS tag, t.digest FROM tags t
       JOIN repositories repo ON repo.id = t.repo_id
       WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = t.repo_id AND m.digest = t.digest)`,
    )
    .all();
}
