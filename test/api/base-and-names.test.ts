import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  OCTET,
  call,
  expectApiVersion,
  expectError,
  filesMatching,
  hexOf,
  pushBlob,
  pushImage,
  randomBlob,
  raw,
  sha256,
  uniq,
} from '../helpers/oci.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

describe('base endpoint', () => {
  it.each(['/v2/', '/v2'])('GET %s -> 200 {} with the API version header', async (path) => {
    const res = await call(reg.url, 'GET', path);
    expect(res.status).toBe(200);
    expectApiVersion(res);
    expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
    expect(res.json()).toEqual({});
  });

  it('HEAD /v2/ -> 200 with the API version header', async () => {
    const res = await call(reg.url, 'HEAD', '/v2/');
    expect(res.status).toBe(200);
    expectApiVersion(res);
  });
});

describe('unknown endpoints and methods', () => {
  it.each([
    ['GET', '/v2/foo/bar/baz'],
    ['GET', '/v2/foo/unknown/thing'],
    ['GET', '/v2/foo/blobs'],
    ['POST', '/v2/foo/tags'],
  ])('%s %s -> 404 UNSUPPORTED', async (method, path) => {
    const res = await call(reg.url, method, path);
    expectError(res, 404, 'UNSUPPORTED');
  });

  it.each([
    ['PATCH', '/v2/foo/manifests/latest'],
    ['POST', '/v2/foo/manifests/latest'],
    ['POST', '/v2/foo/tags/list'],
    ['PUT', '/v2/foo/tags/list'],
    ['DELETE', '/v2/foo/tags/list'],
    ['PUT', `/v2/foo/blobs/${sha256('x')}`],
    ['POST', `/v2/foo/blobs/${sha256('x')}`],
    ['PATCH', `/v2/foo/blobs/${sha256('x')}`],
    ['DELETE', '/v2/_catalog'],
    ['POST', '/v2/_catalog'],
    ['DELETE', '/v2/'],
    ['PUT', '/v2/'],
    ['POST', `/v2/foo/referrers/${sha256('x')}`],
  ])('%s %s -> 405 UNSUPPORTED', async (method, path) => {
    const res = await call(reg.url, method, path);
    expectError(res, 405, 'UNSUPPORTED');
  });
});

describe('repository names', () => {
  const valid = [
    'a',
    'abc123',
    'a.b',
    'a_b',
    'a__b',
    'a-b',
    'a---b',
    'a/b',
    'a/b/c',
    'library/ubuntu',
    'x1/y-2/z.3/w__4/v',
  ];

  it.each(valid)('valid name %s: uploads accepted and blobs readable', async (name) => {
    const data = randomBlob(16);
    const digest = await pushBlob(reg.url, name, data);
    const res = await call(reg.url, 'GET', `/v2/${name}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  it('multi-level names work for manifests, tags and catalog', async () => {
    const name = `deep/${uniq('n')}/c/d`;
    const img = await pushImage(reg.url, name, 'v1');
    const m = await call(reg.url, 'GET', `/v2/${name}/manifests/v1`);
    expect(m.status).toBe(200);
    expect(m.headers.get('docker-content-digest')).toBe(img.digest);
    expect(m.body.equals(img.bytes)).toBe(true);
    const tags = await call(reg.url, 'GET', `/v2/${name}/tags/list`);
    expect(tags.status).toBe(200);
    expect(tags.json()).toEqual({ name, tags: ['v1'] });
    const cat = await call(reg.url, 'GET', '/v2/_catalog');
    expect(cat.status).toBe(200);
    expect(cat.json().repositories).toContain(name);
    // a prefix of the name is not a repository
    const prefix = await call(reg.url, 'GET', `/v2/deep/tags/list`);
    expectError(prefix, 404, 'NAME_UNKNOWN');
  });

  const invalid = [
    'A',
    'Abc',
    'a/B',
    '-a',
    'a-',
    '.a',
    'a.',
    '_a',
    'a_',
    'a___b',
    'a..b',
    'a._b',
    'a//b',
    'a/-b',
    'a%20b',
    'a@b',
    'a:b',
  ];

  it.each(invalid)('invalid name %j -> 400 NAME_INVALID on upload, tags and manifests', async (name) => {
    expectError(await raw(reg.url, 'POST', `/v2/${name}/blobs/uploads/`), 400, 'NAME_INVALID');
    expectError(await raw(reg.url, 'GET', `/v2/${name}/tags/list`), 400, 'NAME_INVALID');
    expectError(await raw(reg.url, 'GET', `/v2/${name}/manifests/latest`), 400, 'NAME_INVALID');
    expectError(await raw(reg.url, 'GET', `/v2/${name}/blobs/${sha256('x')}`), 400, 'NAME_INVALID');
  });

  it('trailing slash in the name -> 400 NAME_INVALID', async () => {
    expectError(await raw(reg.url, 'GET', '/v2/a//tags/list'), 400, 'NAME_INVALID');
    expectError(await raw(reg.url, 'POST', '/v2/a/b//blobs/uploads/'), 400, 'NAME_INVALID');
  });

  it('a 255-character name is accepted, 256 is NAME_INVALID', async () => {
    const seg = 'a'.repeat(50);
    const n255 = [seg, seg, seg, seg, seg].join('/'); // 5*50 + 4 = 254
    const name255 = n255 + 'b';
    expect(name255.length).toBe(255);
    const data = randomBlob(8);
    const digest = await pushBlob(reg.url, name255, data);
    const ok = await call(reg.url, 'GET', `/v2/${name255}/blobs/${digest}`);
    expect(ok.status).toBe(200);

    const name256 = name255 + 'c';
    expect(name256.length).toBe(256);
    expectError(await call(reg.url, 'POST', `/v2/${name256}/blobs/uploads/`), 400, 'NAME_INVALID');
    expectError(await call(reg.url, 'GET', `/v2/${name256}/tags/list`), 400, 'NAME_INVALID');
    const single = 'z'.repeat(256);
    expectError(await call(reg.url, 'GET', `/v2/${single}/tags/list`), 400, 'NAME_INVALID');
  });
});

describe('path traversal never reaches the filesystem', () => {
  const traversals = [
    '..',
    '../..',
    'a/..',
    'a/../b',
    '../escape',
    '%2e%2e',
    '%2E%2E/escape',
    'a/%2e%2e/%2e%2e/escape',
    '..%2fescape',
    'a%2f..%2f..%2fescape',
    '%2e%2e%2f%2e%2e%2fescape',
    '.',
    'a/./b',
  ];

  it.each(traversals)('name %j -> 400 NAME_INVALID for every kind of request, nothing written', async (name) => {
    const data = randomBlob(32);
    const digest = sha256(data);
    const before = await listTree(dirname(reg.dataDir));

    expectError(
      await raw(reg.url, 'POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { headers: OCTET, body: data }),
      400,
      'NAME_INVALID',
    );
    expectError(await raw(reg.url, 'POST', `/v2/${name}/blobs/uploads/`), 400, 'NAME_INVALID');
    expectError(await raw(reg.url, 'GET', `/v2/${name}/blobs/${digest}`), 400, 'NAME_INVALID');
    expectError(await raw(reg.url, 'GET', `/v2/${name}/tags/list`), 400, 'NAME_INVALID');
    expectError(
      await raw(reg.url, 'PUT', `/v2/${name}/manifests/latest`, {
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: '{}',
      }),
      400,
      'NAME_INVALID',
    );
    expectError(await raw(reg.url, 'DELETE', `/v2/${name}/manifests/latest`), 400, 'NAME_INVALID');

    expect(await filesMatching(reg.dataDir, hexOf(digest))).toEqual([]);
    expect(existsSync(join(reg.dataDir, '..', 'escape'))).toBe(false);
    expect(existsSync(join(reg.dataDir, 'escape'))).toBe(false);
    // nothing new appeared next to the data directory
    expect(await listTree(dirname(reg.dataDir))).toEqual(before);
  });

  it('a traversal digest is DIGEST_INVALID and never read', async () => {
    const name = uniq('trav');
    await pushBlob(reg.url, name, randomBlob(8));
    for (const d of ['sha256:..%2f..%2f..%2fetc%2fpasswd', 'sha256:../../../etc/passwd', '..%2f..%2fetc']) {
      const res = await raw(reg.url, 'GET', `/v2/${name}/blobs/${d}`);
      expect([400, 404]).toContain(res.status);
      if (res.status === 400) expectError(res, 400, 'DIGEST_INVALID');
      else expectError(res, 404, 'UNSUPPORTED'); // the path no longer matches a route at all
      expect(res.text).not.toMatch(/root:/);
    }
  });
});

/** Entries named like the traversal target directly in dir. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir);
  return entries.filter((e) => e === 'escape' || e.startsWith('escape')).sort();
}
