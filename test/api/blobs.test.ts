import { get as httpGet } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  call,
  expectApiVersion,
  expectError,
  expectHeadError,
  pushBlob,
  randomBlob,
  sha256,
  sha512,
  uniq,
} from '../helpers/oci.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

const blobPath = (repo: string, digest: string) => `/v2/${repo}/blobs/${digest}`;

describe('GET/HEAD blob', () => {
  const repo = uniq('blobs');
  const data = randomBlob(100);
  let digest: string;
  beforeAll(async () => {
    digest = await pushBlob(reg.url, repo, data);
  });

  it('GET -> 200 with the exact bytes and all headers', async () => {
    const res = await call(reg.url, 'GET', blobPath(repo, digest));
    expect(res.status).toBe(200);
    expectApiVersion(res);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe('100');
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('etag')).toBe(`"${digest}"`);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.body.equals(data)).toBe(true);
  });

  it('HEAD -> 200 with the same headers and no body', async () => {
    const res = await call(reg.url, 'HEAD', blobPath(repo, digest));
    expect(res.status).toBe(200);
    expectApiVersion(res);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe('100');
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('etag')).toBe(`"${digest}"`);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.body.length).toBe(0);
  });

  it.each([
    ['bytes=0-0', 0, 0],
    ['bytes=2-5', 2, 5],
    ['bytes=0-99', 0, 99],
    ['bytes=10-', 10, 99],
    ['bytes=99-', 99, 99],
    ['bytes=-1', 99, 99],
    ['bytes=-30', 70, 99],
    ['bytes=-100', 0, 99],
    ['bytes=90-150', 90, 99], // end past the size is clamped
  ])('Range %s -> 206 bytes %i-%i', async (range, start, end) => {
    const res = await call(reg.url, 'GET', blobPath(repo, digest), { headers: { range } });
    expect(res.status).toBe(206);
    expectApiVersion(res);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/100`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it.each(['bytes=100-', 'bytes=100-200', 'bytes=150-160', 'bytes=-0'])(
    'unsatisfiable Range %s -> 416 SIZE_INVALID with Content-Range bytes */100',
    async (range) => {
      const res = await call(reg.url, 'GET', blobPath(repo, digest), { headers: { range } });
      expectError(res, 416, 'SIZE_INVALID');
      expect(res.headers.get('content-range')).toBe('bytes */100');
    },
  );

  // RFC 9110 14.2: a range whose last position is below its first is invalid, and an
  // invalid Range header is ignored like an unknown one.
  it.each(['bytes=abc', 'items=0-5', 'bytes=0-1,5-6', 'bytes=', 'bytes=-', 'bytes=1-2-3', 'bytes=5-3', 'bytes=5-2', 'bytes=99-0', 'bytes=150-120'])(
    'malformed, invalid or multi Range %j is ignored -> 200 full body',
    async (range) => {
      const res = await call(reg.url, 'GET', blobPath(repo, digest), { headers: { range } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe('100');
      expect(res.headers.get('content-range')).toBeNull();
      expect(res.body.equals(data)).toBe(true);
    },
  );

  it('If-None-Match with the ETag -> 304 without body', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await call(reg.url, method, blobPath(repo, digest), { headers: { 'if-none-match': `"${digest}"` } });
      expect(res.status).toBe(304);
      expectApiVersion(res);
      expect(res.body.length).toBe(0);
    }
  });

  it('If-None-Match with another ETag -> 200 full body', async () => {
    const res = await call(reg.url, 'GET', blobPath(repo, digest), {
      headers: { 'if-none-match': `"${sha256('other')}"` },
    });
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  it('unknown digest in a known repository -> 404 BLOB_UNKNOWN (GET) / 404 (HEAD)', async () => {
    const d = sha256(randomBlob(10));
    expectError(await call(reg.url, 'GET', blobPath(repo, d)), 404, 'BLOB_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', blobPath(repo, d)), 404);
  });

  it('unknown repository -> 404 NAME_UNKNOWN', async () => {
    const other = uniq('nope');
    expectError(await call(reg.url, 'GET', blobPath(other, digest)), 404, 'NAME_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', blobPath(other, digest)), 404);
  });

  it('a blob stored for another repository but not linked here -> 404 BLOB_UNKNOWN', async () => {
    const other = uniq('other');
    await pushBlob(reg.url, other, randomBlob(5)); // makes the repository exist
    expectError(await call(reg.url, 'GET', blobPath(other, digest)), 404, 'BLOB_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', blobPath(other, digest)), 404);
    // and a range request must not leak it either
    expectError(
      await call(reg.url, 'GET', blobPath(other, digest), { headers: { range: 'bytes=0-3' } }),
      404,
      'BLOB_UNKNOWN',
    );
  });

  it.each([
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha512:${'a'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    `sha384:${'a'.repeat(96)}`,
    `SHA256:${'a'.repeat(64)}`,
    'a'.repeat(64),
    'sha256',
  ])('malformed digest %s -> 400 DIGEST_INVALID', async (d) => {
    expectError(await call(reg.url, 'GET', blobPath(repo, d)), 400, 'DIGEST_INVALID');
    expectError(await call(reg.url, 'DELETE', blobPath(repo, d)), 400, 'DIGEST_INVALID');
  });

  it('sha512 digests are served', async () => {
    const data512 = randomBlob(40);
    const d = sha512(data512);
    const up = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, {
      headers: { 'content-type': 'application/octet-stream' },
      body: data512,
    });
    expect(up.status, up.text).toBe(201);
    const res = await call(reg.url, 'GET', blobPath(repo, d));
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(d);
    expect(res.headers.get('etag')).toBe(`"${d}"`);
    expect(res.body.equals(data512)).toBe(true);
  });

  it('a zero-length blob is served with Content-Length 0', async () => {
    const d = await pushBlob(reg.url, repo, Buffer.alloc(0));
    expect(d).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    for (const method of ['GET', 'HEAD']) {
      const res = await call(reg.url, method, blobPath(repo, d));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe('0');
      expect(res.headers.get('docker-content-digest')).toBe(d);
      expect(res.body.length).toBe(0);
    }
  });
});

describe('GET of blobs larger than the 1 MiB read buffers', () => {
  const repo = uniq('big');
  const MiB = 1024 * 1024;
  const blobs = [randomBlob(3 * MiB + 17), randomBlob(2 * MiB), randomBlob(MiB + 1)];
  let digests: string[];
  beforeAll(async () => {
    digests = await Promise.all(blobs.map((b) => pushBlob(reg.url, repo, b)));
  });

  it('serves exact bytes to many downloads at once, also after downloads abandoned midway', async () => {
    // Abandoned downloads leave their buffers with a dead socket: none may come back to serve others.
    const abandoned = digests.map(
      (digest) =>
        new Promise<void>((resolve) => {
          const req = httpGet(`${reg.url}${blobPath(repo, digest)}`, (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          });
          req.on('error', () => resolve());
        }),
    );
    await Promise.all(abandoned);
    const downloads = await Promise.all(
      Array.from({ length: 12 }, (_, i) => call(reg.url, 'GET', blobPath(repo, digests[i % 3]!))),
    );
    downloads.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(sha256(res.body)).toBe(digests[i % 3]);
    });
  });

  it.each([
    [MiB - 10, MiB + 10],
    [1, 3 * MiB + 16],
    [2 * MiB, 3 * MiB + 16],
  ])('Range bytes=%i-%i across read boundaries -> the exact bytes', async (start, end) => {
    const res = await call(reg.url, 'GET', blobPath(repo, digests[0]!), { headers: { range: `bytes=${start}-${end}` } });
    expect(res.status).toBe(206);
    expect(res.body.equals(blobs[0]!.subarray(start, end + 1))).toBe(true);
  });
});

describe('DELETE blob', () => {
  it('-> 202, unlinks from this repository only; a second DELETE -> 404 BLOB_UNKNOWN', async () => {
    const a = uniq('dela');
    const b = uniq('delb');
    const data = randomBlob(50);
    const digest = await pushBlob(reg.url, a, data);
    await pushBlob(reg.url, b, data);
    await pushBlob(reg.url, a, randomBlob(3)); // a stays a known repository

    const del = await call(reg.url, 'DELETE', blobPath(a, digest));
    expect(del.status).toBe(202);
    expectApiVersion(del);

    expectError(await call(reg.url, 'GET', blobPath(a, digest)), 404, 'BLOB_UNKNOWN');
    expectHeadError(await call(reg.url, 'HEAD', blobPath(a, digest)), 404);
    const stillThere = await call(reg.url, 'GET', blobPath(b, digest));
    expect(stillThere.status).toBe(200);
    expect(stillThere.body.equals(data)).toBe(true);

    expectError(await call(reg.url, 'DELETE', blobPath(a, digest)), 404, 'BLOB_UNKNOWN');
  });

  it('unknown blob -> 404 BLOB_UNKNOWN; unknown repository -> 404 NAME_UNKNOWN', async () => {
    const repo = uniq('delc');
    await pushBlob(reg.url, repo, randomBlob(4));
    expectError(await call(reg.url, 'DELETE', blobPath(repo, sha256(randomBlob(4)))), 404, 'BLOB_UNKNOWN');
    expectError(await call(reg.url, 'DELETE', blobPath(uniq('ghost'), sha256('x'))), 404, 'NAME_UNKNOWN');
  });

  it('a deleted blob can be pushed again', async () => {
    const repo = uniq('deld');
    const data = randomBlob(20);
    const digest = await pushBlob(reg.url, repo, data);
    expect((await call(reg.url, 'DELETE', blobPath(repo, digest))).status).toBe(202);
    await pushBlob(reg.url, repo, data);
    const res = await call(reg.url, 'GET', blobPath(repo, digest));
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });
});

describe('DELETE blob with storage.delete=false', () => {
  let ro: TestRegistry;
  beforeAll(async () => {
    ro = await startRegistry({ storage: { delete: false } });
  });
  afterAll(async () => {
    await ro.close();
  });

  it('-> 405 UNSUPPORTED and the blob stays readable', async () => {
    const repo = uniq('ro');
    const data = randomBlob(30);
    const digest = await pushBlob(ro.url, repo, data);
    expectError(await call(ro.url, 'DELETE', blobPath(repo, digest)), 405, 'UNSUPPORTED');
    const res = await call(ro.url, 'GET', blobPath(repo, digest));
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });
});
