import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HotCache } from '../../src/db/hot-cache.js';
import { MetadataIndex, type ManifestPut } from '../../src/db/index.js';
import { sha256 } from '../helpers/oci.js';

describe('HotCache', () => {
  it('loads once, then serves from memory until the data version changes', () => {
    let version = 1;
    let loads = 0;
    const cache = new HotCache(() => version, 1024 * 1024);
    const load = () => `value ${++loads}`;
    expect(cache.read('k', load, () => 10)).toBe('value 1');
    expect(cache.read('k', load, () => 10)).toBe('value 1');
    version = 2;
    expect(cache.read('k', load, () => 10)).toBe('value 2');
    cache.clear();
    expect(cache.read('k', load, () => 10)).toBe('value 3');
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

  it('sees its own commits and those of other connections at once', async () => {
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

      // Another connection (another process, or the collector's) moves the tag back and
      // removes a manifest.
      other.prepare('UPDATE tags SET digest = ? WHERE name = ?').run(one.digest, 'latest');
      expect(index.manifestByTag('team/app', 'latest')?.digest).toBe(one.digest);
      other.prepare('DELETE FROM manifests WHERE digest = ?').run(two.digest);
      expect(index.manifestByDigest('team/app', two.digest)).toBeUndefined();

      await index.addBlob('team/app', sha256('layer'), 5);
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBe(5);
      await index.unlinkBlob(index.repositoryId('team/app')!, sha256('layer'));
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBeUndefined();
      await index.addBlob('team/app', sha256('layer'), 5);
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBe(5);
      other.prepare('DELETE FROM repo_blobs').run();
      expect(index.linkedBlobSize('team/app', sha256('layer'))).toBeUndefined();
    } finally {
      other.close();
      index.close();
    }
  });
});
