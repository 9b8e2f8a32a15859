import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConsistency } from '../helpers/consistency.js';
import { call, hexOf, pushBlob, randomBlob, sha256, uniq } from '../helpers/oci.js';
import { killHard, spawnRegistry } from '../helpers/process.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { berthAsync, CLI, pullProblems, pushImageWith, pushIndex } from './helpers.js';

const ENV = { BERTH_GC_GRACE_PERIOD: '200ms', BERTH_GC_UNTAGGED_AFTER: '0s' };

/** Orphan blob files, as a crash between publishing a file and indexing it leaves them. */
async function writeOrphans(dataDir: string, count: number): Promise<void> {
  const old = new Date(Date.now() - 3_600_000);
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(256);
    const hex = hexOf(sha256(bytes));
    const path = join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, bytes);
    await utimes(path, old, old);
  }
}

/** Runs `berth gc` and SIGKILLs it once `when` sees its output line (plus `delayMs`). Returns whether it died by the kill. */
function gcKilledAt(dataDir: string, phase: string, delayMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'gc'], {
      env: { PATH: process.env.PATH, BERTH_STORAGE_ROOT: dataDir, ...ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith(phase)) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.once('error', reject);
    child.once('exit', (_code, signal) => resolve(signal === 'SIGKILL'));
  });
}

function rowCount(dataDir: string): number {
  const db = new Database(join(dataDir, 'index.db'), { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('kill -9 during garbage collection', () => {
  let registry: TestRegistry | undefined;
  let dataDir: string | undefined;
  afterAll(async () => {
    await registry?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('leaves a consistent store; the next run finishes the job and nothing reachable is lost', async () => {
    registry = await startRegistry({ gc: { interval: 0 }, storage: { fsync: false } }, { keepData: true });
    dataDir = registry.dataDir;
    const { url } = registry;
    const repo = uniq('crashgc/');
    const shared = randomBlob(10_000);
    const kept: string[] = [];
    for (let i = 0; i < 4; i++) {
      await pushImageWith(url, repo, 'latest', [shared]); // each re-push leaves an untagged manifest
      kept.push((await pushImageWith(url, repo, `v${i}`, [shared])).digest);
    }
    const children = [await pushImageWith(url, repo, undefined, [shared]), await pushImageWith(url, repo, undefined, [shared])];
    const index = await pushIndex(url, repo, 'multi', children);
    const tags = ['latest', 'v0', 'v1', 'v2', 'v3', 'multi'];
    // Unreferenced blobs (rows to remove) and orphan files (files to sweep).
    for (let i = 0; i < 150; i++) await pushBlob(url, uniq('crashgc/junk'), randomBlob(512));
    await registry.close();
    registry = undefined;
    await writeOrphans(dataDir, 1200);
    await sleep(300);

    const killed: boolean[] = [];
    killed.push(await gcKilledAt(dataDir, 'removing index rows', 0));
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
    killed.push(await gcKilledAt(dataDir, 'sweeping blob files', 0));
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
    await writeOrphans(dataDir, 800);
    killed.push(await gcKilledAt(dataDir, 'sweeping blob files', 40));
    expect((await checkConsistency(dataDir)).problems).toEqual([]);
    // At least one run really died mid-collection.
    expect(killed, `killed: ${killed}`).toContain(true);

    // The server collecting on its schedule, killed too.
    await writeOrphans(dataDir, 1000);
    const server = await spawnRegistry(dataDir, { ...ENV, BERTH_GC_INTERVAL: '50ms', BERTH_STORAGE_FSYNC: 'false' });
    await sleep(150);
    await killHard(server);
    expect((await checkConsistency(dataDir)).problems).toEqual([]);

    const final = await berthAsync(['gc'], dataDir, ENV);
    expect(final.status, final.stderr).toBe(0);
    const consistency = await checkConsistency(dataDir);
    expect(consistency.problems).toEqual([]);
    // No orphans left: every file has its row, and the trash is empty.
    expect(consistency.blobFiles).toBe(rowCount(dataDir));
    const trash = join(dataDir, 'trash');
    expect(existsSync(trash) ? await readdir(trash) : []).toEqual([]);

    registry = await startRegistry({ gc: { interval: 0 } }, { dataDir });
    for (const tag of tags) expect(await pullProblems(registry.url, repo, tag)).toEqual([]);
    for (const digest of [...kept, index.digest, ...children.map((c) => c.digest)]) {
      expect(await pullProblems(registry.url, repo, digest)).toEqual([]);
    }
    const catalog = (await call(registry.url, 'GET', '/v2/_catalog?n=1000')).json<{ repositories: string[] }>().repositories;
    expect(catalog).toContain(repo);
  });
});
