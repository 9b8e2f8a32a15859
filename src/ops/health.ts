import { randomUUID } from 'node:crypto';
import { rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetadataIndex } from '../db/index.js';

export interface Readiness {
  ready: boolean;
  checks: {
    database: { ok: boolean; error?: string };
    storage: { ok: boolean; error?: string };
    disk: { ok: boolean; freeBytes?: number; minFreeBytes: number; error?: string };
  };
}

/**
 * What `/readyz` reports: the index accepts a write, the storage root accepts a new
 * file, and the file system holding it has at least `minFreeBytes` free.
 */
export class HealthChecks {
  private readonly probe;

  constructor(
    index: MetadataIndex,
    private readonly root: string,
    private readonly minFreeBytes: number,
  ) {
    this.probe = index.database.prepare(
      'INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at',
    );
  }

  async readiness(): Promise<Readiness> {
    const [database, storage, disk] = await Promise.all([this.database(), this.storage(), this.disk()]);
    return { ready: database.ok && storage.ok && disk.ok, checks: { database, storage, disk } };
  }

  private async database(): Promise<{ ok: boolean; error?: string }> {
    try {
      this.probe.run(Date.now());
      return { ok: true };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  private async storage(): Promise<{ ok: boolean; error?: string }> {
    const file = join(this.root, `.readyz-${randomUUID()}`);
    try {
      await writeFile(file, 'ok');
      return { ok: true };
    } catch (err) {
      return { ok: false, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
    } finally {
      // A full disk creates the file and then refuses its bytes: it goes either way.
      await rm(file, { force: true });
    }
  }

  private async disk(): Promise<Readiness['checks']['disk']> {
    const minFreeBytes = this.minFreeBytes;
    try {
      const stats = await statfs(this.root);
      const freeBytes = Number(stats.bavail) * Number(stats.bsize);
      return { ok: freeBytes >= minFreeBytes, freeBytes, minFreeBytes };
    } catch (err) {
      return { ok: false, minFreeBytes, error: (err as Error).message };
    }
  }
}
