import type { MetadataIndex } from '../db/index.js';

export interface RepositoryUsage {
  repository: string;
  tags: number;
  manifests: number;
  /** Manifest bytes (stored in the index). */
  manifestBytes: number;
  /** Distinct blobs the repository's manifests reference, and their bytes. */
  blobs: number;
  referencedBytes: number;
  /** Referenced by no other repository's manifests: what deleting the repository frees (after gc). */
  uniqueBytes: number;
  /** Referenced by other repositories' manifests too. */
  sharedBytes: number;
}

export interface UsageTotals {
  repositories: number;
  tags: number;
  manifests: number;
  manifestBytes: number;
  /** Blob rows in the index: the store's content, each blob counted once. */
  blobs: number;
  blobBytes: number;
  /** Blob bytes some manifest references. */
  referencedBytes: number;
  /** Blob bytes no manifest references (collectable once older than the grace period). */
  unreferencedBytes: number;
}

/**
 * Storage accounting from the index, every figure in one read transaction. Blob bytes are
 * counted once however many repositories use them.
 */
export class UsageQueries {
  private readonly stmt;

  constructor(private readonly index: MetadataIndex) {
    const db = index.database;
    this.stmt = {
      repositories: db.prepare<[], { id: number; name: string }>('SELECT id, name FROM repositories ORDER BY name'),
      tags: db.prepare<[], { repoId: number; n: number }>('SELECT repo_id AS repoId, COUNT(*) AS n FROM tags GROUP BY repo_id'),
      manifests: db.prepare<[], { repoId: number; n: number; bytes: number }>(
        'SELECT repo_id AS repoId, COUNT(*) AS n, SUM(size) AS bytes FROM manifests GROUP BY repo_id',
      ),
      blobs: db.prepare<[], { repoId: number; n: number; referenced: number; uniq: number }>(
        `WITH rb AS (
           SELECT DISTINCT m.repo_id, r.digest FROM manifest_refs r JOIN manifests m ON m.id = r.manifest_id WHERE r.kind = 'blob'
         ),
         dc AS (SELECT digest, COUNT(*) AS n FROM rb GROUP BY digest)
         SELECT rb.repo_id AS repoId, COUNT(*) AS n, SUM(b.size) AS referenced,
                SUM(CASE WHEN dc.n = 1 THEN b.size ELSE 0 END) AS uniq
         FROM rb JOIN blobs b ON b.digest = rb.digest JOIN dc ON dc.digest = rb.digest
         GROUP BY rb.repo_id`,
      ),
      store: db.prepare<[], { n: number; bytes: number | null }>('SELECT COUNT(*) AS n, SUM(size) AS bytes FROM blobs'),
      referenced: db.prepare<[], { bytes: number | null }>(
        `SELECT SUM(b.size) AS bytes FROM blobs b
         WHERE EXISTS (SELECT 1 FROM manifest_refs r WHERE r.digest = b.digest AND r.kind = 'blob')`,
      ),
    };
  }

  /** Every repository (or only `repository`, undefined if unknown) plus the store's totals. */
  usage(repository?: string): { repositories: RepositoryUsage[]; totals: UsageTotals } | undefined {
    return this.index.database.transaction(() => {
      const tags = new Map(this.stmt.tags.all().map((r) => [r.repoId, r.n]));
      const manifests = new Map(this.stmt.manifests.all().map((r) => [r.repoId, r]));
      const blobs = new Map(this.stmt.blobs.all().map((r) => [r.repoId, r]));
      const all = this.stmt.repositories.all().map((repo): RepositoryUsage => {
        const b = blobs.get(repo.id);
        const referencedBytes = b?.referenced ?? 0;
        const uniqueBytes = b?.uniq ?? 0;
        return {
          repository: repo.name,
          tags: tags.get(repo.id) ?? 0,
          manifests: manifests.get(repo.id)?.n ?? 0,
          manifestBytes: manifests.get(repo.id)?.bytes ?? 0,
          blobs: b?.n ?? 0,
          referencedBytes,
          uniqueBytes,
          sharedBytes: referencedBytes - uniqueBytes,
        };
      });
      const store = this.stmt.store.get()!;
      const referencedBytes = this.stmt.referenced.get()!.bytes ?? 0;
      const totals: UsageTotals = {
        repositories: all.length,
        tags: all.reduce((n, r) => n + r.tags, 0),
        manifests: all.reduce((n, r) => n + r.manifests, 0),
        manifestBytes: all.reduce((n, r) => n + r.manifestBytes, 0),
        blobs: store.n,
        blobBytes: store.bytes ?? 0,
        referencedBytes,
        unreferencedBytes: (store.bytes ?? 0) - referencedBytes,
      };
      if (repository === undefined) return { repositories: all, totals };
      const one = all.filter((r) => r.repository === repository);
      return one.length === 0 ? undefined : { repositories: one, totals };
    })();
  }
}
