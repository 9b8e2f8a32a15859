import type { MetadataIndex } from '../db/index.js';

export interface RepositoryRemoval {
  repository: string;
  tags: number;
  manifests: number;
  /** Blob links (pushed or mounted blobs) the repository had. */
  links: number;
  /** Blob bytes no other repository's manifests reference: reclaimed by the next gc. */
  uniqueBytes: number;
  dryRun: boolean;
}

/**
 * Deletes whole repositories: every tag, manifest and blob link in one transaction. The
 * blobs stay in the store until a collection finds them unreferenced. Open upload
 * sessions are left alone: they expire, or if completed bring the repository back
 * holding just that blob (collectable after the grace period).
 */
export class RepositoryRemover {
  private readonly stmt;

  constructor(private readonly index: MetadataIndex) {
    const db = index.database;
    this.stmt = {
      repo: db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE name = ?'),
      counts: db.prepare<[{ id: number }], { tags: number; manifests: number; links: number }>(
        `SELECT (SELECT COUNT(*) FROM tags WHERE repo_id = @id) AS tags,
                (SELECT COUNT(*) FROM manifests WHERE repo_id = @id) AS manifests,
                (SELECT COUNT(*) FROM repo_blobs WHERE repo_id = @id) AS links`,
      ),
      unique: db.prepare<[{ id: number }], { bytes: number | null }>(
        `SELECT SUM(b.size) AS bytes FROM blobs b
         WHERE EXISTS (SELECT 1 FROM manifest_refs r JOIN manifests m ON m.id = r.manifest_id
                       WHERE r.digest = b.digest AND r.kind = 'blob' AND m.repo_id = @id)
           AND NOT EXISTS (SELECT 1 FROM manifest_refs r JOIN manifests m ON m.id = r.manifest_id
                           WHERE r.digest = b.digest AND r.kind = 'blob' AND m.repo_id <> @id)`,
      ),
      remove: db.prepare('DELETE FROM repositories WHERE id = ?'),
    };
  }

  /** What removing `name` does (and, unless `dryRun`, does it); undefined if there is no such repository. */
  remove(name: string, options: { dryRun?: boolean } = {}): RepositoryRemoval | undefined {
    return this.index.write(() => {
      const repo = this.stmt.repo.get(name);
      if (!repo) return undefined;
      const counts = this.stmt.counts.get({ id: repo.id })!;
      const uniqueBytes = this.stmt.unique.get({ id: repo.id })!.bytes ?? 0;
      if (!options.dryRun) this.stmt.remove.run(repo.id);
      return { repository: name, ...counts, uniqueBytes, dryRun: options.dryRun ?? false };
    });
  }
}
