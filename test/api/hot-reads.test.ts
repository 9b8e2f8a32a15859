import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRegistry } from '../helpers/process.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { call, expectError, expectHeadError, MT, pushBlob, pushImage, randomBlob, uniq, type Pushed, type Res } from '../helpers/oci.js';

/** The hot path answered: it keeps its header names' case, where Fastify lowercases them. */
const viaHotPath = (res: Res) => res.headerNames.includes('Docker-Content-Digest');

/** An answer's headers, but for those that belong to the connection or the moment. */
function answerHeaders(res: Res): Record<string, string> {
  return Object.fromEntries([...res.headers].filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name)));
}

describe('hot reads (cached manifests and blob HEADs answered ahead of Fastify)', () => {
  let reg: TestRegistry;
  const repo = uniq('hot');
  let image: Pushed;
  let layer: string;
  beforeAll(async () => {
    reg = await startRegistry();
    image = await pushImage(reg.url, repo, 'v1');
    layer = image.json.layers[0].digest;
  });
  afterAll(async () => {
    await reg?.close();
  });

  it.each([
    ['GET', 'manifests/v1'],
    ['HEAD', 'manifests/v1'],
    ['GET', 'manifests/DIGEST'],
    ['HEAD', 'manifests/DIGEST'],
    ['HEAD', 'blobs/LAYER'],
  ])('%s %s: the same answer as the routes give', async (method, tail) => {
    const path = `/v2/${repo}/${tail.replace('DIGEST', image.digest).replace('LAYER', layer)}`;
    // A query string sends the request through Fastify's routes.
    const routed = await call(reg.url, method, `${path}?via=routes`);
    const hot = await call(reg.url, method, path);
    expect(viaHotPath(routed)).toBe(false);
    expect(viaHotPath(hot)).toBe(true);
    expect(hot.status).toBe(200);
    expect(answerHeaders(hot)).toEqual(answerHeaders(routed));
    expect(hot.body.equals(routed.body)).toBe(true);
    if (method === 'GET') expect(hot.body.equals(image.bytes)).toBe(true);
  });

  it('leaves misses, errors, ranges, conditional requests and blob GETs to the routes', async () => {
    expectError(await call(reg.url, 'GET', `/v2/${repo}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
    expectError(await call(reg.url, 'GET', `/v2/Bad//name/manifests/v1`), 400, 'NAME_INVALID');
    expectError(await call(reg.url, 'GET', `/v2/${uniq('none')}/manifests/v1`), 404, 'NAME_UNKNOWN');
    const range = await call(reg.url, 'HEAD', `/v2/${repo}/blobs/${layer}`, { headers: { Range: 'bytes=0-9' } });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe(`bytes 0-9/${image.json.layers[0].size}`);
    // An invalid range (last below first) is ignored there as on every path: the whole blob.
    const invalid = await call(reg.url, 'HEAD', `/v2/${repo}/blobs/${layer}`, { headers: { Range: 'bytes=5-3' } });
    expect(invalid.status).toBe(200);
    expect(invalid.headers.get('content-length')).toBe(String(image.json.layers[0].size));
    expect(invalid.headers.get('content-range')).toBeNull();
    expectHeadError(await call(reg.url, 'HEAD', `/v2/${repo}/blobs/${layer}`, { headers: { Range: 'bytes=999999-' } }), 416);
    const cached = await call(reg.url, 'HEAD', `/v2/${repo}/blobs/${layer}`, { headers: { 'If-None-Match': `"${layer}"` } });
    expect(cached.status).toBe(304);
    const get = await call(reg.url, 'GET', `/v2/${repo}/blobs/${layer}`);
    expect(get.status).toBe(200);
    expect(viaHotPath(get)).toBe(false);
    expect(get.body.length).toBe(image.json.layers[0].size);
  });

  it('follows a moved tag and a deleted manifest at once', async () => {
    const tagRepo = uniq('hotmove');
    const first = await pushImage(reg.url, tagRepo, 'latest');
    expect((await call(reg.url, 'GET', `/v2/${tagRepo}/manifests/latest`)).headers.get('docker-content-digest')).toBe(first.digest);
    const second = await pushImage(reg.url, tagRepo, 'latest');
    expect((await call(reg.url, 'GET', `/v2/${tagRepo}/manifests/latest`)).headers.get('docker-content-digest')).toBe(second.digest);
    expect((await call(reg.url, 'DELETE', `/v2/${tagRepo}/manifests/${second.digest}`)).status).toBe(202);
    expectError(await call(reg.url, 'GET', `/v2/${tagRepo}/manifests/latest`), 404, 'MANIFEST_UNKNOWN');
    const blob = await pushBlob(reg.url, tagRepo, randomBlob(10));
    expect((await call(reg.url, 'HEAD', `/v2/${tagRepo}/blobs/${blob}`)).status).toBe(200);
    expect((await call(reg.url, 'DELETE', `/v2/${tagRepo}/blobs/${blob}`)).status).toBe(202);
    expect((await call(reg.url, 'HEAD', `/v2/${tagRepo}/blobs/${blob}`)).status).toBe(404);
  });

  it('counts what it answers in the request metrics', async () => {
    const count = async () => {
      const text = (await call(reg.url, 'GET', '/metrics')).text;
      const line = text.split('\n').find((l) => l.startsWith('berth_http_requests_total{route="manifest",method="HEAD",status="200"}'));
      return Number(line?.split(' ')[1] ?? 0);
    };
    const before = await count();
    for (let i = 0; i < 3; i++) expect(viaHotPath(await call(reg.url, 'HEAD', `/v2/${repo}/manifests/v1`))).toBe(true);
    expect(await count()).toBe(before + 3);
  });
});

describe('hot reads and the access log', () => {
  it('write the line the routes write, with its own request id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-hot-log-'));
    const registry = await spawnRegistry(dir, { BERTH_LOG_LEVEL: 'info' });
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: registry.child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    try {
      const repo = uniq('logged');
      const image = await pushImage(registry.url, repo, 'v1');
      const path = `/v2/${repo}/manifests/v1`;
      const routed = await call(registry.url, 'HEAD', `${path}?via=routes`);
      const hot = await call(registry.url, 'HEAD', path);
      expect([viaHotPath(routed), viaHotPath(hot)]).toEqual([false, true]);
      registry.child.kill('SIGTERM');
      await registry.exited;
      const access = lines.filter((l) => l.msg === 'request');
      const [routedLine, hotLine] = access.slice(-2);
      const fields = (l: Record<string, unknown>) => ({ ...l, time: 0, reqId: 0, url: 0, durationMs: 0 });
      expect(fields(hotLine!)).toEqual(fields(routedLine!));
      expect(hotLine).toMatchObject({ method: 'HEAD', url: path, status: 200, bytesOut: image.bytes.length });
      // Every line has an id of its own, from the one sequence.
      expect(new Set(access.map((l) => l.reqId)).size).toBe(access.length);
    } finally {
      registry.child.kill('SIGKILL');
      await registry.exited;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('hot reads stay off where another part must see the request', () => {
  it('when webhooks are sent', async () => {
    const reg = await startRegistry({ notifications: { endpoints: [{ name: 'n', url: 'http://127.0.0.1:9/hook' }] } });
    try {
      const repo = uniq('cold');
      await pushImage(reg.url, repo, 'v1');
      const res = await call(reg.url, 'GET', `/v2/${repo}/manifests/v1`, { headers: { Accept: MT.ociManifest } });
      expect(res.status).toBe(200);
      expect(viaHotPath(res)).toBe(false);
    } finally {
      await reg.close();
    }
  });
});
