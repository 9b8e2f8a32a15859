import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HotCache, OTHER_PROCESS_LAG_MS } from '../../src/db/hot-cache.js';
import { MetadataIndex, type ManifestPut } from '../../src/db/index.js';
import { sha256 } from '../helpers/oci.js';

/** Lets the time pass within which the cache may miss another process's commit. */
function pastLag(): void {
  const until = performance.now() + OTHER_PROCESS_LAG_MS;
  while (performance.now() <= until) {
    // wait
  }
}

describe('HotCache', () => {
  it('loads once, then serves from memory until cleared or the data version changes', () => {
    let version = 1;
    let loads = 0;
    const cache = new HotCache(() => version, 1024 * 1024);
    const load = () => `value ${++loads}`;
    expect(cache.read('k', load, () => 10)).toBe('value 1');
    expect(cache.read('k', load, () => 10)).toBe('value 1');
    cache.clear();
    expect(cache.read('k', load, () => 10)).toBe('value 2');
    version = 2;
    pastLag();
    expect(cache.read('k', load, () => 10)).toBe('value 3');
  });

  it('reads the data version at most once per lag interval, not per lookup', () => {
    let checks = 0;
    const cache = new HotCache(() => ++checks, 1024 * 1024);
    const started = performance.now();
    for (let i = 0; i < 1000; i++) cache.read('k', () => 'v', () => 1);
    const intervals = Math.ceil((performance.now() - started) / OTHER_PROCESS_LAG_MS);
    // One read at construction, then one per interval begun (however long the loop took:
    // a check per lookup fails this unless each lookup took a whole interval).
    expect(checks).toBeLessThanOrEqual(1 + intervals + 1);
  });

  it('does not cache what is not there', () => {
    let loads = 0;
    const cache = new HotCache(() => 1, 1024 * 1024);
    const load = () => (++loads > 1 ? 'found' : undefined);
    expect(cache.read('k', load, () => 1)).toBeUndefined();
    expect(cache.read('k', load, () => 1)).toBe('found');
  });

  it('keeps within its byte budget, dropping the least recently used first', () => {
    const loads: string[] = [];
    // Each entry costs 2,000 bytes of payload plus its overhead: two fit, three do not.
    const cache = new HotCache(() => 1, 5_000);
    const read = (key: string) => cache.read(key, () => (loads.push(key), key), () => 2_000);
    read('a');
    read('b');
    read('a'); // a is now the most recently used
    read('c'); // evicts b
    read('a');
    read('b');
    expect(loads).toEqual(['a', 'b', 'c', 'b']);
  });

  it('with no budget, always loads', () => {
    let loads = 0;
    const cache = new HotCache(() => 1, 0);
    cache.read('k', () => ++loads, () => 1);
    cache.read('k', () => ++loads, () => 1);
    expect(loads).toBe(2);
  });
});

describe('MetadataIndex with its cache', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function manifest(text: string): ManifestPut {
    const content = Buffer.from(text);
    return {
      digest: sha256(content),
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: null,
      subject: null,
      annotations: null,
      size: content.length,
      content,
      blobs: [],
      children: [],
    };
  }

  it("sees its own commits at once, another process's within the lag", async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-hot-'));
    const file = join(dir, 'index.db');
    const index = new MetadataIndex(file, { durable: false, cacheBytes: 1024 * 1024 });
    const other = new Database(file);
    try {
      const one = manifest('{"n":1}');
      const two = manifest('{"n":2}');
      await index.putManifest('team/app', one, 'latest', () => {});
      expect(index.manifestByTag('team/app', 'latest')?.digest).toBe(one.digest);

      // A re-push through the index moves the tag.
      await index.putManifest('team/app', two, 'latest', () => {});
      expect(index.manifestByTag('team/app', 'latest')?.digest).toBe(two.digest);
      expect(index.manifestByDigest('team/app', one.digest)?.digest).toBe(one.digest);

      // This process's own statements (the collector's, the pull-through cache's) change
      // rows through `write`: each change shows at once (most of these run well within
      // one lag interval of each other).
      const moveTag = index.database.prepare('UPDATE tags SET digest = ? WHERE name = ?');
      for (const target of [one, two, one, two, one, two, one, two, one]) {
        index.write(() => moveTag.run(target.digest, 'latest'));
        expect(index.manifestByTag('team/app', 'latest')?.digest).toBe(target.digest);
      }

      // Another process moves the tag back and removes a manifest.
      other.prepare('UPDATE tags SET digest = ? WHERE name = ?').run(two.digest, 'latest');
      pastLag();
      expect(index.manifestByTag('team/app', 'latest')?.digest).toBe(two.digest);
      other.prepare('DELETE FROM manifests WHERE digest = ?').run(one.digest);
      pastLag();
      expect(index.manifestByDigest('team/app', one.digest)).toBeUndefined();

      // Tag lists: a tag added or removed here shows at once, one added elsewhere within the lag.
      const repoId = index.repositoryId('team/app')!;
      expect(index.listTags(repoId, '', 10)).toEqual(['latest']);
      await index.putManifest('team/app', one, 'v1', () => {});
      expect(index.listTags(repoId, '', 10)).toEqual(['latest', 'v1']);
      expect(index.listTags(repoId, 'latest', 10)).toEqual(['v1']);
      await index.deleteTag(repoId, 'latest');
      expect(index.listTags(repoId, '', 10)).toEqual(['v1']);
      other.prepare('INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (?, ?, ?, 0)').run(repoId, 'v2', two.digest);
      pastLag();
      expect(index.listTags(repoId, '', 10)).toEqual(['v1', 'v2']);

      await index.addBlob('team/app', sha256('layer'), 5);
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBe(5);
      await index.unlinkBlob(index.repositoryId('team/app')!, sha256('layer'));
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBeUndefined();
      await index.addBlob('team/app', sha256('layer'), 5);
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBe(5);
      other.prepare('DELETE FROM repo_blobs').run();
      pastLag();
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBeUndefined();
    } finally {
      other.close();
      index.close();
    }
  });
});
