import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  OCTET,
  call,
  expectApiVersion,
  expectError,
  filesMatching,
  hexOf,
  locationPath,
  locationUrl,
  pushBlob,
  randomBlob,
  raw,
  sha256,
  sha512,
  startUpload,
  uniq,
  withQuery,
} from '../helpers/oci.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

const UUID_PATH = (repo: string) => new RegExp(`^/v2/${repo.replace(/[/.]/g, '\\$&')}/blobs/uploads/[^/]+$`);

/** Asserts the blob is neither readable nor on disk anywhere in the data directory. */
async function expectNotStored(r: TestRegistry, repo: string, digest: string) {
  const res = await call(r.url, 'GET', `/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(404);
  expect(['BLOB_UNKNOWN', 'NAME_UNKNOWN']).toContain(res.json().errors[0].code);
  expect(await filesMatching(r.dataDir, hexOf(digest))).toEqual([]);
}

async function expectBlob(r: TestRegistry, repo: string, digest: string, data: Buffer) {
  const res = await call(r.url, 'GET', `/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('docker-content-digest')).toBe(digest);
  expect(res.body.equals(data)).toBe(true);
}

describe('storage layout (control for the "nothing on disk" checks)', () => {
  it('a pushed blob lies at <dataDir>/blobs/<alg>/<first 2 hex>/<hex>; its session file is gone', async () => {
    const repo = uniq('layout');
    const data = randomBlob(64);
    const { url, uuid } = await startUpload(reg.url, repo);
    const patch = await call(reg.url, 'PATCH', url, { headers: OCTET, body: data.subarray(0, 32) });
    expect(patch.status).toBe(202);
    expect((await filesMatching(reg.dataDir, uuid)).length).toBeGreaterThan(0); // the session's data is on disk
    const digest = sha256(data);
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(patch, reg.url), { digest }), { headers: OCTET, body: data.subarray(32) });
    expect(put.status).toBe(201);
    const hex = hexOf(digest);
    const file = join(reg.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
    expect(await filesMatching(reg.dataDir, hex)).toContain(file);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await filesMatching(reg.dataDir, uuid)).toEqual([]);
  });
});

describe('POST starts a session', () => {
  it('-> 202 with Location, Docker-Upload-UUID, Range 0-0, Content-Length 0', async () => {
    const repo = uniq('up');
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/`);
    expect(res.status).toBe(202);
    expectApiVersion(res);
    const path = locationPath(res, reg.url);
    expect(path).toMatch(UUID_PATH(repo));
    const uuid = res.headers.get('docker-upload-uuid');
    expect(uuid).toBeTruthy();
    expect(path.endsWith(`/${uuid}`)).toBe(true);
    expect(res.headers.get('range')).toBe('0-0');
    expect(res.headers.get('content-length')).toBe('0');
    expect(res.body.length).toBe(0);
  });

  it('each POST gets its own session', async () => {
    const repo = uniq('up');
    const a = await startUpload(reg.url, repo);
    const b = await startUpload(reg.url, repo);
    expect(a.uuid).not.toBe(b.uuid);
  });

  it('GET on a fresh session -> 204 with Range 0-0', async () => {
    const repo = uniq('up');
    const { url, uuid } = await startUpload(reg.url, repo);
    const res = await call(reg.url, 'GET', url);
    expect(res.status).toBe(204);
    expectApiVersion(res);
    expect(res.headers.get('range')).toBe('0-0');
    expect(res.headers.get('docker-upload-uuid')).toBe(uuid);
    expect(locationPath(res, reg.url)).toMatch(UUID_PATH(repo));
  });
});

describe('monolithic POST ?digest=', () => {
  it('-> 201 with Location and Docker-Content-Digest; blob readable', async () => {
    const repo = uniq('mono');
    const data = randomBlob(300);
    const digest = sha256(data);
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      headers: OCTET,
      body: data,
    });
    expect(res.status).toBe(201);
    expectApiVersion(res);
    expect(locationPath(res, reg.url)).toBe(`/v2/${repo}/blobs/${digest}`);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, repo, digest, data);
  });

  it('digest mismatch -> 400 DIGEST_INVALID and nothing stored', async () => {
    const repo = uniq('mono');
    await pushBlob(reg.url, repo, randomBlob(3));
    const data = randomBlob(80);
    const claimed = sha256(randomBlob(80));
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${claimed}`, {
      headers: OCTET,
      body: data,
    });
    expectError(res, 400, 'DIGEST_INVALID');
    await expectNotStored(reg, repo, claimed);
    await expectNotStored(reg, repo, sha256(data));
  });

  it('malformed digest -> 400 DIGEST_INVALID', async () => {
    const repo = uniq('mono');
    const data = randomBlob(8);
    for (const d of ['sha256:zz', `md5:${'a'.repeat(32)}`, `sha384:${'a'.repeat(96)}`]) {
      const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { headers: OCTET, body: data });
      expectError(res, 400, 'DIGEST_INVALID');
    }
    await expectNotStored(reg, repo, sha256(data));
  });

  it('sha512 digest -> 201 and readable by the sha512 digest', async () => {
    const repo = uniq('mono');
    const data = randomBlob(64);
    const digest = sha512(data);
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { headers: OCTET, body: data });
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(locationPath(res, reg.url)).toBe(`/v2/${repo}/blobs/${digest}`);
    await expectBlob(reg, repo, digest, data);
  });

  it('sha512 mismatch -> 400 DIGEST_INVALID', async () => {
    const repo = uniq('mono');
    const data = randomBlob(64);
    const claimed = sha512(randomBlob(64));
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${claimed}`, { headers: OCTET, body: data });
    expectError(res, 400, 'DIGEST_INVALID');
    await expectNotStored(reg, repo, claimed);
  });

  it('zero-length blob -> 201', async () => {
    const repo = uniq('mono');
    const digest = sha256(Buffer.alloc(0));
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { headers: OCTET, body: Buffer.alloc(0) });
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, repo, digest, Buffer.alloc(0));
  });
});

describe('chunked upload', () => {
  it('PATCH without Content-Range, twice, then PUT without body -> 201', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(1000);
    const { url, uuid } = await startUpload(reg.url, repo);

    const p1 = await call(reg.url, 'PATCH', url, { headers: OCTET, body: data.subarray(0, 400) });
    expect(p1.status).toBe(202);
    expectApiVersion(p1);
    expect(p1.headers.get('range')).toBe('0-399');
    expect(p1.headers.get('docker-upload-uuid')).toBe(uuid);
    expect(locationPath(p1, reg.url)).toMatch(UUID_PATH(repo));

    const p2 = await call(reg.url, 'PATCH', locationUrl(p1, reg.url), { headers: OCTET, body: data.subarray(400) });
    expect(p2.status).toBe(202);
    expect(p2.headers.get('range')).toBe('0-999');

    const status = await call(reg.url, 'GET', locationUrl(p2, reg.url));
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-999');
    expect(status.headers.get('docker-upload-uuid')).toBe(uuid);
    expect(locationPath(status, reg.url)).toMatch(UUID_PATH(repo));

    const digest = sha256(data);
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(p2, reg.url), { digest }));
    expect(put.status).toBe(201);
    expectApiVersion(put);
    expect(locationPath(put, reg.url)).toBe(`/v2/${repo}/blobs/${digest}`);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, repo, digest, data);

    // the session is gone once completed
    expectError(await call(reg.url, 'GET', url), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('PATCH with Content-Range (Docker style), PUT with the final chunk -> 201', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(300);
    const { url } = await startUpload(reg.url, repo);
    const p1 = await call(reg.url, 'PATCH', url, {
      headers: { ...OCTET, 'content-range': '0-99' },
      body: data.subarray(0, 100),
    });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-99');
    const p2 = await call(reg.url, 'PATCH', locationUrl(p1, reg.url), {
      headers: { ...OCTET, 'content-range': '100-199' },
      body: data.subarray(100, 200),
    });
    expect(p2.status).toBe(202);
    expect(p2.headers.get('range')).toBe('0-199');
    const digest = sha256(data);
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(p2, reg.url), { digest }), {
      headers: OCTET,
      body: data.subarray(200),
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, repo, digest, data);
  });

  it('out-of-order chunk -> 416 BLOB_UPLOAD_INVALID with the current Range; state unchanged', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(200);
    const { url } = await startUpload(reg.url, repo);
    const p1 = await call(reg.url, 'PATCH', url, {
      headers: { ...OCTET, 'content-range': '0-99' },
      body: data.subarray(0, 100),
    });
    expect(p1.status).toBe(202);
    const next = locationUrl(p1, reg.url);

    for (const range of ['150-199', '0-99', '50-149', '101-200']) {
      const [s, e] = range.split('-').map(Number) as [number, number];
      const bad = await call(reg.url, 'PATCH', next, {
        headers: { ...OCTET, 'content-range': range },
        body: randomBlob(e - s + 1),
      });
      expectError(bad, 416, 'BLOB_UPLOAD_INVALID');
      expect(bad.headers.get('range')).toBe('0-99');
    }

    const status = await call(reg.url, 'GET', next);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-99');

    // the session is still usable
    const p2 = await call(reg.url, 'PATCH', next, {
      headers: { ...OCTET, 'content-range': '100-199' },
      body: data.subarray(100),
    });
    expect(p2.status).toBe(202);
    const digest = sha256(data);
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(p2, reg.url), { digest }));
    expect(put.status).toBe(201);
    await expectBlob(reg, repo, digest, data);
  });

  it('PUT with a mismatched digest -> 400 DIGEST_INVALID, nothing stored, session removed', async () => {
    const repo = uniq('chunk');
    await pushBlob(reg.url, repo, randomBlob(3));
    const data = randomBlob(500);
    const { url, uuid } = await startUpload(reg.url, repo);
    const p1 = await call(reg.url, 'PATCH', url, { headers: OCTET, body: data.subarray(0, 250) });
    expect(p1.status).toBe(202);
    const claimed = sha256(randomBlob(500));
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(p1, reg.url), { digest: claimed }), {
      headers: OCTET,
      body: data.subarray(250),
    });
    expectError(put, 400, 'DIGEST_INVALID');
    await expectNotStored(reg, repo, claimed);
    await expectNotStored(reg, repo, sha256(data));
    expectError(await call(reg.url, 'GET', url), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'PUT', withQuery(url, { digest: sha256(data) })), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectNotStored(reg, repo, sha256(data));
    expect(await filesMatching(reg.dataDir, uuid)).toEqual([]);
  });

  it('PUT without digest -> 400 DIGEST_INVALID and nothing stored', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(40);
    const { url } = await startUpload(reg.url, repo);
    const put = await call(reg.url, 'PUT', url, { headers: OCTET, body: data });
    expectError(put, 400, 'DIGEST_INVALID');
    await expectNotStored(reg, repo, sha256(data));
  });

  it('PUT with a malformed digest -> 400 DIGEST_INVALID', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(40);
    const { url } = await startUpload(reg.url, repo);
    const put = await call(reg.url, 'PUT', withQuery(url, { digest: 'sha256:1234' }), { headers: OCTET, body: data });
    expectError(put, 400, 'DIGEST_INVALID');
    await expectNotStored(reg, repo, sha256(data));
  });

  it('chunked sha512 upload -> 201', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(256);
    const { url } = await startUpload(reg.url, repo);
    const p1 = await call(reg.url, 'PATCH', url, { headers: OCTET, body: data.subarray(0, 100) });
    expect(p1.status).toBe(202);
    const digest = sha512(data);
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(p1, reg.url), { digest }), {
      headers: OCTET,
      body: data.subarray(100),
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, repo, digest, data);
  });

  it('zero-length blob via POST + PUT without body -> 201', async () => {
    const repo = uniq('chunk');
    const { url } = await startUpload(reg.url, repo);
    const digest = sha256(Buffer.alloc(0));
    const put = await call(reg.url, 'PUT', withQuery(url, { digest }));
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    const head = await call(reg.url, 'HEAD', `/v2/${repo}/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('0');
  });

  it('uploading a blob that already exists -> 201 and content unchanged', async () => {
    const repo = uniq('chunk');
    const data = randomBlob(33);
    const digest = await pushBlob(reg.url, repo, data);
    await pushBlob(reg.url, repo, data);
    await expectBlob(reg, repo, digest, data);
  });
});

describe('session identity and cancellation', () => {
  it('a session of another repository -> 404 BLOB_UPLOAD_UNKNOWN on every method', async () => {
    const a = uniq('own');
    const b = uniq('thief');
    await pushBlob(reg.url, b, randomBlob(2));
    const data = randomBlob(20);
    const { url, uuid } = await startUpload(reg.url, a);
    const p = await call(reg.url, 'PATCH', url, { headers: OCTET, body: data.subarray(0, 10) });
    expect(p.status).toBe(202);

    const foreign = `${reg.url}/v2/${b}/blobs/uploads/${uuid}`;
    expectError(await call(reg.url, 'GET', foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'PATCH', foreign, { headers: OCTET, body: data.subarray(10) }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(
      await call(reg.url, 'PUT', withQuery(foreign, { digest: sha256(data) }), { headers: OCTET, body: data.subarray(10) }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
    expectError(await call(reg.url, 'DELETE', foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectNotStored(reg, b, sha256(data));

    // the owner's session is untouched
    const status = await call(reg.url, 'GET', locationUrl(p, reg.url));
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-9');
  });

  it('unknown uuid -> 404 BLOB_UPLOAD_UNKNOWN on every method', async () => {
    const repo = uniq('unk');
    await pushBlob(reg.url, repo, randomBlob(2));
    const url = `${reg.url}/v2/${repo}/blobs/uploads/00000000-0000-4000-8000-000000000000`;
    expectError(await call(reg.url, 'GET', url), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'PATCH', url, { headers: OCTET, body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'PUT', withQuery(url, { digest: sha256('abc') }), { headers: OCTET, body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'DELETE', url), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectNotStored(reg, repo, sha256('abc'));
  });

  it('a uuid that looks like a path is never resolved on disk', async () => {
    const repo = uniq('unk');
    await pushBlob(reg.url, repo, randomBlob(2));
    for (const uuid of ['..', '%2e%2e', '..%2f..%2fx', 'a%2f..', '..%2f..%2f..%2fetc%2fpasswd']) {
      const res = await raw(reg.url, 'GET', `/v2/${repo}/blobs/uploads/${uuid}`);
      expect(res.status).toBe(404);
      expect(['BLOB_UPLOAD_UNKNOWN', 'UNSUPPORTED']).toContain(res.json().errors[0].code);
    }
  });

  it('DELETE cancels: 204, then GET/PATCH/PUT/DELETE -> 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniq('cancel');
    const data = randomBlob(30);
    const { url, uuid } = await startUpload(reg.url, repo);
    const p = await call(reg.url, 'PATCH', url, { headers: OCTET, body: data });
    expect(p.status).toBe(202);
    expect((await filesMatching(reg.dataDir, uuid)).length).toBeGreaterThan(0);
    const del = await call(reg.url, 'DELETE', locationUrl(p, reg.url));
    expect(del.status).toBe(204);
    expectApiVersion(del);
    expectError(await call(reg.url, 'GET', url), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'PATCH', url, { headers: OCTET, body: data }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'PUT', withQuery(url, { digest: sha256(data) })), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await call(reg.url, 'DELETE', url), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectNotStored(reg, repo, sha256(data));
    expect(await filesMatching(reg.dataDir, uuid)).toEqual([]);
  });
});

describe('cross-repository mount', () => {
  it('mount=<d>&from=<repo> where linked -> 201 with Location and Docker-Content-Digest', async () => {
    const src = uniq('src');
    const dst = uniq('dst');
    const data = randomBlob(77);
    const digest = await pushBlob(reg.url, src, data);
    const res = await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}&from=${src}`);
    expect(res.status).toBe(201);
    expectApiVersion(res);
    expect(locationPath(res, reg.url)).toBe(`/v2/${dst}/blobs/${digest}`);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, dst, digest, data);
    // the mount makes dst a known repository
    const tags = await call(reg.url, 'GET', `/v2/${dst}/tags/list`);
    expect(tags.status).toBe(200);
  });

  it('mount from a multi-level repository -> 201', async () => {
    const src = `${uniq('org')}/team/src`;
    const dst = `${uniq('org')}/dst`;
    const data = randomBlob(12);
    const digest = await pushBlob(reg.url, src, data);
    const res = await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}&from=${src}`);
    expect(res.status).toBe(201);
    await expectBlob(reg, dst, digest, data);
  });

  it('blob not linked in from -> 202 normal session; the blob is not linked in the target', async () => {
    const holder = uniq('holder');
    const src = uniq('src');
    const dst = uniq('dst');
    const data = randomBlob(40);
    const digest = await pushBlob(reg.url, holder, data); // exists in the store, not in src
    await pushBlob(reg.url, src, randomBlob(4));
    await pushBlob(reg.url, dst, randomBlob(4));
    const res = await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}&from=${src}`);
    expect(res.status).toBe(202);
    expect(locationPath(res, reg.url)).toMatch(UUID_PATH(dst));
    expect(res.headers.get('docker-upload-uuid')).toBeTruthy();
    expectError(await call(reg.url, 'GET', `/v2/${dst}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');

    // the session works like any other
    const put = await call(reg.url, 'PUT', withQuery(locationUrl(res, reg.url), { digest }), { headers: OCTET, body: data });
    expect(put.status).toBe(201);
    await expectBlob(reg, dst, digest, data);
  });

  it('from an unknown repository -> 202 session', async () => {
    const dst = uniq('dst');
    const digest = await pushBlob(reg.url, uniq('holder'), randomBlob(9));
    const res = await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}&from=${uniq('ghost')}`);
    expect(res.status).toBe(202);
    expect(locationPath(res, reg.url)).toMatch(UUID_PATH(dst));
  });

  it('automatic mount (no from) of a blob in the store -> 201', async () => {
    const dst = uniq('dst');
    const data = randomBlob(21);
    const digest = await pushBlob(reg.url, uniq('elsewhere'), data);
    const res = await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}`);
    expect(res.status).toBe(201);
    expect(locationPath(res, reg.url)).toBe(`/v2/${dst}/blobs/${digest}`);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(reg, dst, digest, data);
  });

  it('automatic mount of an unknown blob -> 202 session', async () => {
    const dst = uniq('dst');
    const digest = sha256(randomBlob(21));
    const res = await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}`);
    expect(res.status).toBe(202);
    expect(locationPath(res, reg.url)).toMatch(UUID_PATH(dst));
    expect(res.headers.get('range')).toBe('0-0');
  });

  it('a mounted blob can be deleted in the target without affecting the source', async () => {
    const src = uniq('src');
    const dst = uniq('dst');
    const data = randomBlob(19);
    const digest = await pushBlob(reg.url, src, data);
    expect((await call(reg.url, 'POST', `/v2/${dst}/blobs/uploads/?mount=${digest}&from=${src}`)).status).toBe(201);
    expect((await call(reg.url, 'DELETE', `/v2/${dst}/blobs/${digest}`)).status).toBe(202);
    expectError(await call(reg.url, 'GET', `/v2/${dst}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    await expectBlob(reg, src, digest, data);
  });
});

/**
 * The restart test talks over fresh connections (node:http, no keep-alive) so that closing the
 * first registry does not depend on how the client pools sockets.
 */
function rawCall(base: string, method: string, pathOrUrl: string, init?: { headers?: Record<string, string>; body?: Uint8Array }) {
  const u = new URL(pathOrUrl, base);
  return raw(base, method, u.pathname + u.search, init);
}

describe('sessions survive a restart', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'berth-api-restart-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('POST + PATCH, restart, GET status, PATCH, PUT -> 201', async () => {
    const repo = uniq('restart');
    const data = randomBlob(600);
    const first = await startRegistry({}, { dataDir, keepData: true });
    let sessionPath: string;
    let uuid: string;
    try {
      const post = await rawCall(first.url, 'POST', `/v2/${repo}/blobs/uploads/`);
      expect(post.status).toBe(202);
      const s = { url: locationUrl(post, first.url), uuid: post.headers.get('docker-upload-uuid')! };
      uuid = s.uuid;
      const p1 = await rawCall(first.url, 'PATCH', s.url, {
        headers: { ...OCTET, 'content-range': '0-249' },
        body: data.subarray(0, 250),
      });
      expect(p1.status).toBe(202);
      expect(p1.headers.get('range')).toBe('0-249');
      const u = new URL(locationUrl(p1, first.url));
      sessionPath = u.pathname + u.search;
    } finally {
      await first.close();
    }

    const second = await startRegistry({}, { dataDir, keepData: true });
    try {
      const status = await rawCall(second.url, 'GET', sessionPath);
      expect(status.status).toBe(204);
      expect(status.headers.get('range')).toBe('0-249');
      expect(status.headers.get('docker-upload-uuid')).toBe(uuid);

      const p2 = await rawCall(second.url, 'PATCH', sessionPath, {
        headers: { ...OCTET, 'content-range': '250-499' },
        body: data.subarray(250, 500),
      });
      expect(p2.status).toBe(202);
      expect(p2.headers.get('range')).toBe('0-499');
      const digest = sha256(data);
      const put = await rawCall(second.url, 'PUT', withQuery(locationUrl(p2, second.url), { digest }), {
        headers: OCTET,
        body: data.subarray(500),
      });
      expect(put.status).toBe(201);
      expect(put.headers.get('docker-content-digest')).toBe(digest);
      const blob = await rawCall(second.url, 'GET', `/v2/${repo}/blobs/${digest}`);
      expect(blob.status).toBe(200);
      expect(blob.body.equals(data)).toBe(true);
    } finally {
      await second.close();
    }
  });
});
