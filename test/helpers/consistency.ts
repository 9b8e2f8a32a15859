import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';

async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Independently checks a (stopped) registry's data directory: every blob file
 * re-hashes to its name, and every index row resolves (blobs to files, links to
 * blobs, manifests to their digest and references, tags to manifests), and no upload
 * data is left without its session. Returns the list of problems; empty means consistent.
 */
export async function checkConsistency(dataDir: string): Promise<{ problems: string[]; blobFiles: number; manifests: number }> {
  const problems: string[] = [];
  const files = new Map<string, number>();
  const blobsDir = join(dataDir, 'blobs');
  for (const algorithm of existsSync(blobsDir) ? await readdir(blobsDir) : []) {
    for (const prefix of await readdir(join(blobsDir, algorithm))) {
      for (const hex of await readdir(join(blobsDir, algorithm, prefix))) {
        const path = join(blobsDir, algorithm, prefix, hex);
        if (!hex.startsWith(prefix)) problems.push(`blob file in wrong directory: ${path}`);
        const actual = await hashFile(path, algorithm);
        if (actual !== hex) problems.push(`blob file ${algorithm}:${hex} hashes to ${actual}`);
        files.set(`${algorithm}:${hex}`, (await stat(path)).size);
      }
    }
  }

  const db = new Database(join(dataDir, 'index.db'), { readonly: true });
  try {
    for (const row of db.prepare('SELECT digest, size FROM blobs').all() as { digest: string; size: number }[]) {
      if (!files.has(row.digest)) problems.push(`blob row ${row.digest} has no file`);
      else if (files.get(row.digest) !== row.size) problems.push(`blob row ${row.digest} size ${row.size} != file ${files.get(row.digest)}`);
    }
    const dangling = (sql: string, what: string) => {
      for (const row of db.prepare(sql).all() as { ref: string }[]) problems.push(`${what}: ${row.ref}`);
    };
    dangling(
      'SELECT l.digest AS ref FROM repo_blobs l LEFT JOIN blobs b ON b.digest = l.digest WHERE b.digest IS NULL',
      'link to unknown blob',
    );
    dangling(
      `SELECT r.digest AS ref FROM manifest_refs r JOIN manifests m ON m.id = r.manifest_id
       LEFT JOIN blobs b ON b.digest = r.digest WHERE r.kind = 'blob' AND b.digest IS NULL`,
      'manifest references a missing blob',
    );
    dangling(
      `SELECT r.digest AS ref FROM manifest_refs r JOIN manifests m ON m.id = r.manifest_id
       LEFT JOIN manifests c ON c.repo_id = m.repo_id AND c.digest = r.digest WHERE r.kind = 'manifest' AND c.id IS NULL`,
      'index references a missing manifest',
    );
    dangling(
      `SELECT t.name || ' -> ' || t.digest AS ref FROM tags t LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
       WHERE m.id IS NULL`,
      'tag points at a missing manifest',
    );
    // The image index goes with the manifests, and the search index with repositories and tags.
    dangling('SELECT i.manifest_id AS ref FROM images i LEFT JOIN manifests m ON m.id = i.manifest_id WHERE m.id IS NULL', 'image row of a missing manifest');
    dangling('SELECT m.digest AS ref FROM manifests m LEFT JOIN images i ON i.manifest_id = m.id WHERE i.manifest_id IS NULL', 'manifest not indexed');
    dangling(
      'SELECT s.rowid AS ref FROM repository_search s LEFT JOIN repositories r ON r.id = s.rowid WHERE r.id IS NULL',
      'search entry of a missing repository',
    );
    dangling(
      'SELECT r.name AS ref FROM repositories r LEFT JOIN repository_search s ON s.rowid = r.id WHERE s.rowid IS NULL',
      'repository missing from search',
    );
    const layersOf = db.prepare('SELECT digest FROM image_layers WHERE manifest_id = ? ORDER BY position').pluck();
    for (const m of db.prepare('SELECT id, digest, content FROM manifests').all() as { id: number; digest: string; content: Buffer }[]) {
      const layers = ((JSON.parse(m.content.toString()) as { layers?: { digest: string }[] }).layers ?? []).map((l) => l.digest);
      if (JSON.stringify(layersOf.all(m.id)) !== JSON.stringify(layers)) problems.push(`image layers of ${m.digest} differ from its manifest`);
    }
    const manifests = db.prepare('SELECT digest, size, content FROM manifests').all() as { digest: string; size: number; content: Buffer }[];
    for (const m of manifests) {
      const [algorithm, hex] = m.digest.split(':') as [string, string];
      if (createHash(algorithm).update(m.content).digest('hex') !== hex) problems.push(`manifest ${m.digest} content does not match`);
      if (m.size !== m.content.length) problems.push(`manifest ${m.digest} size ${m.size} != ${m.content.length}`);
    }
    const uploadRows = new Set((db.prepare('SELECT id FROM uploads').all() as { id: string }[]).map((r) => r.id));
    const uploadFiles = new Set(existsSync(join(dataDir, 'uploads')) ? await readdir(join(dataDir, 'uploads')) : []);
    // A session without a file is an empty one; data without a session must not remain.
    for (const id of uploadFiles) if (!uploadRows.has(id)) problems.push(`upload file ${id} has no row`);
    return { problems, blobFiles: files.size, manifests: manifests.length };
  } finally {
    db.close();
  }
}
