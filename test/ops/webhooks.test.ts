import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { call, descriptor, MT, pushImage, sha256 } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { VERSION } from '../../src/version.js';
import { parseConfig } from '../../src/config.js';

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A webhook receiver that answers 503 while `down`, and records what it accepted. */
async function startReceiver() {
  const state = { down: true, refused: 0, received: [] as Received[] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (state.down) {
        state.refused++;
        res.writeHead(503).end();
        return;
      }
      state.received.push({ path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    state,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('webhooks', () => {
  it('delivers every event once, in order per repository, signed, after the receiver was down and across a restart', async () => {
    const receiver = await startReceiver();
    cleanups.push(receiver.close);
    const dataDir = await mkdtemp(join(tmpdir(), 'berth-hooks-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const overrides = {
      notifications: {
        endpoints: [
          { name: 'all', url: `${receiver.url}/all`, secret: 's3cret' },
          { name: 'b-pushes', url: `${receiver.url}/b`, events: ['push'], repositories: ['b/**'] },
        ],
        retryBackoff: '20ms',
        maxRetryBackoff: '100ms',
      },
    };
    let reg: TestRegistry | undefined = await startRegistry(overrides, { dataDir });
    cleanups.push(async () => reg?.close());

    const a1 = await pushImage(reg.url, 'a', '1');
    const pulled = await call(reg.url, 'GET', '/v2/a/manifests/1', { headers: { accept: a1.mediaType } });
    expect(pulled.status).toBe(200);
    expect((await call(reg.url, 'HEAD', '/v2/a/manifests/1', { headers: { accept: a1.mediaType } })).status).toBe(200);
    const b1 = await pushImage(reg.url, 'b/x', '1');
    const a2 = await pushImage(reg.url, 'a', '2');
    expect((await call(reg.url, 'DELETE', '/v2/a/manifests/1')).status).toBe(202);
    expect((await call(reg.url, 'DELETE', `/v2/a/manifests/${a2.digest}`)).status).toBe(202);

    await until(() => receiver.state.refused >= 4, 'failed attempts');
    await reg.close();
    reg = await startRegistry(overrides, { dataDir });
    receiver.state.down = false;
    await until(() => receiver.state.received.length >= 7, 'all deliveries');
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more arrives
    expect(receiver.state.received).toHaveLength(7);

    const toAll = receiver.state.received.filter((r) => r.path === '/all');
    for (const r of toAll) {
      expect(r.headers['x-berth-signature-256']).toBe(`sha256=${createHmac('sha256', 's3cret').update(r.body).digest('hex')}`);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toBe(`berth/${VERSION}`);
    }
    const events = toAll.map((r) => JSON.parse(r.body));
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events.filter((e) => e.repository === 'a').map((e) => [e.action, e.tag, e.digest])).toEqual([
      ['push', '1', a1.digest],
      ['pull', '1', a1.digest],
      ['push', '2', a2.digest],
      ['delete', '1', undefined],
      ['delete', undefined, a2.digest],
    ]);
    expect(events.filter((e) => e.repository === 'b/x').map((e) => [e.action, e.tag, e.digest])).toEqual([['push', '1', b1.digest]]);
    const first = events.find((e) => e.repository === 'a');
    expect(first).toMatchObject({
      action: 'push',
      repository: 'a',
      tag: '1',
      digest: a1.digest,
      mediaType: a1.mediaType,
      size: a1.bytes.length,
      actor: { name: 'anonymous' },
      request: { addr: '127.0.0.1', method: 'PUT' },
    });
    expect(Date.parse(first.timestamp)).not.toBeNaN();
    expect(events.find((e) => e.action === 'pull')).toMatchObject({ mediaType: a1.mediaType, size: a1.bytes.length });

    const toB = receiver.state.received.filter((r) => r.path === '/b');
    expect(toB).toHaveLength(1);
    expect(toB[0]!.headers['x-berth-signature-256']).toBeUndefined();
    expect(JSON.parse(toB[0]!.body)).toMatchObject({ action: 'push', repository: 'b/x', tag: '1' });
    expect(JSON.parse(toB[0]!.body).id).toBe(events.find((e) => e.repository === 'b/x').id);

    const metrics = (await call(reg.url, 'GET', '/metrics')).text;
    expect(metrics).toContain('berth_webhook_deliveries_total{endpoint="all",result="delivered"} 6');
  });

  it('names the authenticated user as the actor and leaves out what the endpoint does not ask for', async () => {
    const receiver = await startReceiver();
    receiver.state.down = false;
    cleanups.push(receiver.close);
    const reg = await startRegistry(
      {
        auth: { mode: 'basic', rules: [{ repositories: '**', users: ['alice'], actions: ['pull', 'push', 'delete'] }] },
        notifications: { endpoints: [{ name: 'deletes', url: receiver.url, events: ['delete'], repositories: ['team/*'] }] },
      },
      { users: [{ name: 'alice', password: 'wonderland' }] },
    );
    cleanups.push(() => reg.close());
    const auth = { authorization: basic('alice', 'wonderland') };
    // An empty-layer manifest: the config blob is the only blob.
    const config = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
    const digest = sha256(config);
    for (const repo of ['team/app', 'other/app']) {
      expect((await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { headers: auth, body: config })).status).toBe(201);
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [] });
      const put = await call(reg.url, 'PUT', `/v2/${repo}/manifests/1`, { headers: { ...auth, 'content-type': MT.ociManifest }, body: manifest });
      expect(put.status, put.text).toBe(201);
      expect((await call(reg.url, 'DELETE', `/v2/${repo}/manifests/1`, { headers: auth })).status).toBe(202);
    }
    await until(() => receiver.state.received.length >= 1, 'the delete event');
    await new Promise((resolve) => setTimeout(resolve, 200)); // nothing more arrives
    expect(receiver.state.received.map((r) => JSON.parse(r.body))).toEqual([
      expect.objectContaining({ action: 'delete', repository: 'team/app', tag: '1', actor: { name: 'alice' } }),
    ]);
  });

  it('sends Distribution\'s envelope to an endpoint with format: distribution, with its configured headers', async () => {
    const receiver = await startReceiver();
    receiver.state.down = false;
    cleanups.push(receiver.close);
    const reg = await startRegistry({
      auth: { mode: 'basic', rules: [{ repositories: '**', users: ['*'], actions: ['pull', 'push', 'delete'] }] },
      notifications: {
        endpoints: [
          { name: 'registry2', url: `${receiver.url}/events`, format: 'distribution', headers: { Authorization: ['Bearer t0ken'], 'X-Tenant': 'lan' } },
        ],
      },
    }, { users: [{ name: 'ci', password: 'ci-pass' }] });
    cleanups.push(() => reg.close());
    const auth = { authorization: basic('ci', 'ci-pass'), 'user-agent': 'docker/27.0' };
    // An empty-layer image: the config blob is the only blob.
    const config = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
    expect((await call(reg.url, 'POST', `/v2/team/app/blobs/uploads/?digest=${sha256(config)}`, { headers: auth, body: config })).status).toBe(201);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [] }));
    const digest = sha256(manifest);
    expect((await call(reg.url, 'PUT', '/v2/team/app/manifests/1.0', { headers: { ...auth, 'content-type': MT.ociManifest }, body: manifest })).status).toBe(201);
    expect((await call(reg.url, 'GET', `/v2/team/app/manifests/${digest}`, { headers: { ...auth, accept: MT.ociManifest } })).status).toBe(200);
    expect((await call(reg.url, 'DELETE', '/v2/team/app/manifests/1.0', { headers: auth })).status).toBe(202);
    expect((await call(reg.url, 'DELETE', `/v2/team/app/manifests/${digest}`, { headers: auth })).status).toBe(202);
    await until(() => receiver.state.received.length >= 4, 'four deliveries');

    for (const r of receiver.state.received) {
      expect(r.path).toBe('/events');
      expect(r.headers['content-type']).toBe('application/vnd.docker.distribution.events.v1+json');
      expect(r.headers.authorization).toBe('Bearer t0ken');
      expect(r.headers['x-tenant']).toBe('lan');
    }
    const envelopes = receiver.state.received.map((r) => JSON.parse(r.body) as { events: Array<Record<string, any>> });
    for (const envelope of envelopes) expect(Object.keys(envelope)).toEqual(['events']);
    const [push, pull, untag, remove] = envelopes.map((e) => e.events[0]!);
    const request = { addr: '127.0.0.1', host: reg.host, useragent: 'docker/27.0' };
    const source = { addr: expect.stringMatching(/^.+:0$/), instanceID: expect.stringMatching(/^[0-9a-f-]{36}$/) };
    expect(push).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      timestamp: expect.any(String),
      action: 'push',
      target: {
        mediaType: MT.ociManifest,
        digest,
        size: manifest.length,
        length: manifest.length,
        repository: 'team/app',
        url: `http://${reg.host}/v2/team/app/manifests/${digest}`,
        tag: '1.0',
      },
      request: { ...request, id: expect.stringMatching(/^req-/), method: 'PUT' },
      actor: { name: 'ci' },
      source,
    });
    expect(Date.parse(push!.timestamp)).not.toBeNaN();
    expect(pull).toMatchObject({ action: 'pull', target: { digest, size: manifest.length, length: manifest.length, repository: 'team/app' }, request: { method: 'GET' } });
    expect(pull!.target.tag).toBeUndefined();
    expect(untag).toMatchObject({ action: 'delete', target: { repository: 'team/app', tag: '1.0' }, request: { method: 'DELETE' } });
    expect(untag!.target.digest).toBeUndefined();
    expect(remove!.target).toEqual({ digest, repository: 'team/app', url: `http://${reg.host}/v2/team/app/manifests/${digest}` });
    expect(new Set(envelopes.map((e) => e.events[0]!.source.instanceID)).size).toBe(1);
  });

  it('an anonymous actor is {} in Distribution\'s envelope', async () => {
    const receiver = await startReceiver();
    receiver.state.down = false;
    cleanups.push(receiver.close);
    const reg = await startRegistry({ notifications: { endpoints: [{ name: 'r2', url: receiver.url, format: 'distribution', events: ['push'] }] } });
    cleanups.push(() => reg.close());
    await pushImage(reg.url, 'a', '1');
    await until(() => receiver.state.received.length >= 1, 'the push');
    expect(JSON.parse(receiver.state.received[0]!.body).events[0].actor).toEqual({});
  });

  it('refuses a header name that HTTP does not allow and an unknown format', () => {
    expect(() => parseConfig('notifications:\n  endpoints:\n    - {name: a, url: "http://x/1", headers: {"Bad Header": x}}\n')).toThrow(/notifications\.endpoints\.0\.headers/);
    expect(() => parseConfig('notifications:\n  endpoints:\n    - {name: a, url: "http://x/1", format: cloudevents}\n')).toThrow(/notifications\.endpoints\.0\.format/);
  });
});
