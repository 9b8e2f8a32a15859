import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  MT,
  call,
  expectApiVersion,
  expectError,
  nextLink,
  pushBlob,
  pushImage,
  pushManifest,
  randomBlob,
  uniq,
  type Res,
} from '../helpers/oci.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

/** Byte-wise (lexical) order, as the contract requires. */
const lexical = (xs: string[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

function expectNext(res: Res, path: string, n: number, last: string) {
  const link = nextLink(res);
  expect(link, 'Link header').toBeDefined();
  const u = new URL(link!, 'http://x');
  expect(u.pathname).toBe(path);
  expect(u.searchParams.get('n')).toBe(String(n));
  expect(u.searchParams.get('last')).toBe(last);
}

describe('tags list', () => {
  const repo = `${uniq('tags')}/app`;
  const tags = ['latest', 'v10', 'v2', 'v1.0', '1.0', 'B', 'a', '_x', 'V2', 'v2-rc.1', 'v2.0'];
  const sorted = lexical(tags);

  beforeAll(async () => {
    const img = await pushImage(reg.url, repo, tags[0]);
    for (const t of tags.slice(1)) await pushManifest(reg.url, repo, t, img.json, MT.ociManifest);
  });

  it('lists all tags lexically sorted with the name', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list`);
    expect(res.status).toBe(200);
    expectApiVersion(res);
    expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
    expect(res.json()).toEqual({ name: repo, tags: sorted });
    expect(res.headers.get('link')).toBeNull();
    // sanity: lexical, not natural order
    expect(sorted.indexOf('v10')).toBeLessThan(sorted.indexOf('v2'));
    expect(sorted.indexOf('B')).toBeLessThan(sorted.indexOf('a'));
  });

  it('n limits the page and Link walks to the end', async () => {
    const n = 3;
    const seen: string[] = [];
    let url: string | undefined = `/v2/${repo}/tags/list?n=${n}`;
    let pages = 0;
    while (url) {
      const res = await call(reg.url, 'GET', url);
      expect(res.status).toBe(200);
      const body = res.json();
      expect(body.name).toBe(repo);
      expect(body.tags.length).toBeLessThanOrEqual(n);
      seen.push(...body.tags);
      pages++;
      if (seen.length < sorted.length) {
        expect(body.tags.length).toBe(n);
        expectNext(res, `/v2/${repo}/tags/list`, n, body.tags[body.tags.length - 1]);
      } else {
        expect(res.headers.get('link')).toBeNull();
      }
      url = nextLink(res);
      expect(pages).toBeLessThan(20);
    }
    expect(seen).toEqual(sorted);
    expect(pages).toBe(Math.ceil(sorted.length / n));
  });

  it('no Link when the page ends exactly at the last tag', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list?n=${sorted.length}`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(sorted);
    expect(res.headers.get('link')).toBeNull();
    const more = await call(reg.url, 'GET', `/v2/${repo}/tags/list?n=${sorted.length + 5}`);
    expect(more.json().tags).toEqual(sorted);
    expect(more.headers.get('link')).toBeNull();
  });

  it('exact Link header format', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list?n=2`);
    expect(res.headers.get('link')).toBe(`</v2/${repo}/tags/list?n=2&last=${sorted[1]}>; rel="next"`);
  });

  it('last without n returns everything after last', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list?last=v1.0`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(sorted.filter((t) => t > 'v1.0'));
  });

  it('last that is not a tag still pages lexically', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list?n=2&last=b`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(sorted.filter((t) => t > 'b').slice(0, 2));
  });

  it('last after every tag -> empty list, no Link', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list?last=zzz`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ name: repo, tags: [] });
    expect(res.headers.get('link')).toBeNull();
  });

  it('n=0 -> 200 with an empty list', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/tags/list?n=0`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ name: repo, tags: [] });
  });

  it('a deleted tag disappears from the list', async () => {
    const r = uniq('tagdel');
    const img = await pushImage(reg.url, r, 'one');
    await pushManifest(reg.url, r, 'two', img.json, MT.ociManifest);
    expect((await call(reg.url, 'DELETE', `/v2/${r}/manifests/one`)).status).toBe(202);
    const res = await call(reg.url, 'GET', `/v2/${r}/tags/list`);
    expect(res.json()).toEqual({ name: r, tags: ['two'] });
  });

  it('a repository with blobs but no tags -> 200 with an empty list', async () => {
    const r = uniq('blobonly');
    await pushBlob(reg.url, r, randomBlob(8));
    const res = await call(reg.url, 'GET', `/v2/${r}/tags/list`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ name: r, tags: [] });
  });

  it('unknown repository -> 404 NAME_UNKNOWN', async () => {
    expectError(await call(reg.url, 'GET', `/v2/${uniq('ghost')}/tags/list`), 404, 'NAME_UNKNOWN');
    expectError(await call(reg.url, 'GET', `/v2/${uniq('ghost')}/sub/tags/list?n=2`), 404, 'NAME_UNKNOWN');
  });

  it('invalid repository name -> 400 NAME_INVALID', async () => {
    expectError(await call(reg.url, 'GET', `/v2/Upper/tags/list`), 400, 'NAME_INVALID');
  });
});

describe('catalog', () => {
  let cat: TestRegistry;
  const repos = ['b', 'a', 'a/b', 'a-b', 'a.b', 'a_b', 'a/b/c', 'z9', '0', 'lib/x'];
  const sorted = lexical(repos);

  beforeAll(async () => {
    cat = await startRegistry();
    // half get an image, half only a blob: both make the repository exist
    for (const [i, r] of repos.entries()) {
      if (i % 2 === 0) await pushImage(cat.url, r, 'latest');
      else await pushBlob(cat.url, r, randomBlob(8));
    }
  });
  afterAll(async () => {
    await cat.close();
  });

  it('lists every repository, sorted', async () => {
    const res = await call(cat.url, 'GET', '/v2/_catalog');
    expect(res.status).toBe(200);
    expectApiVersion(res);
    expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
    expect(res.json()).toEqual({ repositories: sorted });
    expect(res.headers.get('link')).toBeNull();
  });

  it('n/last pagination with Link walks to the end', async () => {
    const n = 4;
    const seen: string[] = [];
    let url: string | undefined = `/v2/_catalog?n=${n}`;
    let pages = 0;
    while (url) {
      const res = await call(cat.url, 'GET', url);
      expect(res.status).toBe(200);
      const page: string[] = res.json().repositories;
      expect(page.length).toBeLessThanOrEqual(n);
      seen.push(...page);
      pages++;
      if (seen.length < sorted.length) {
        expect(page.length).toBe(n);
        expectNext(res, '/v2/_catalog', n, page[page.length - 1]!);
      } else {
        expect(res.headers.get('link')).toBeNull();
      }
      url = nextLink(res);
      expect(pages).toBeLessThan(20);
    }
    expect(seen).toEqual(sorted);
  });

  it('exact Link header format (last with a slash)', async () => {
    const idx = sorted.indexOf('a/b');
    const res = await call(cat.url, 'GET', `/v2/_catalog?n=${idx + 1}`);
    expect(res.json().repositories).toEqual(sorted.slice(0, idx + 1));
    const link = res.headers.get('link');
    expect(link).toMatch(/^<\/v2\/_catalog\?n=\d+&last=a(\/|%2F)b>; rel="next"$/);
  });

  it('page ending exactly at the last repository has no Link', async () => {
    const res = await call(cat.url, 'GET', `/v2/_catalog?n=${sorted.length}`);
    expect(res.json().repositories).toEqual(sorted);
    expect(res.headers.get('link')).toBeNull();
  });

  it('last skips lexically', async () => {
    const res = await call(cat.url, 'GET', '/v2/_catalog?last=a/b');
    expect(res.status).toBe(200);
    expect(res.json().repositories).toEqual(sorted.filter((r) => r > 'a/b'));
  });

  it('n=0 -> 200 with an empty list', async () => {
    const res = await call(cat.url, 'GET', '/v2/_catalog?n=0');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ repositories: [] });
  });

  it('failed pushes and open sessions do not create a repository', async () => {
    const ghost = uniq('failed');
    const session = await call(cat.url, 'POST', `/v2/${ghost}/blobs/uploads/`);
    expect(session.status).toBe(202);
    // a digest mismatch must not create the repository
    const res = await call(cat.url, 'POST', `/v2/${ghost}/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, {
      headers: { 'content-type': 'application/octet-stream' },
      body: randomBlob(4),
    });
    expectError(res, 400, 'DIGEST_INVALID');
    const list = await call(cat.url, 'GET', '/v2/_catalog');
    expect(list.json().repositories).not.toContain(ghost);
    expectError(await call(cat.url, 'GET', `/v2/${ghost}/tags/list`), 404, 'NAME_UNKNOWN');
  });
});
