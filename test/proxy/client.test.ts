/**
 * The upstream client against loopback servers: Basic auth against a real Berth, and a
 * scripted token server (token cache and expiry on a fake clock), redirects to "blob
 * storage" on another origin, timeouts and back-off.
 */
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/config.js';
import { UpstreamClient } from '../../src/proxy/client.js';
import { VERSION } from '../../src/version.js';
import { MT, pushImage } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const upstreamConfig = (url: string, extra: Record<string, unknown> = {}) =>
  makeConfig({ proxy: { upstreams: [{ name: 'up', url, timeout: '60s', ...extra }] } }).proxy.upstreams[0]!;

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return { server, url: `http://127.0.0.1:${address.port}` };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('upstream client: HTTP Basic against a Berth in basic mode', () => {
  let reg: TestRegistry;
  let digest: string;
  beforeAll(async () => {
    const seeded = await startRegistry({}, { users: [{ name: 'mirror', password: 'pw-1' }], keepData: true });
    digest = (await pushImage(seeded.url, 'org/app', 'v1')).digest;
    await seeded.close();
    reg = await startRegistry(
      { auth: { mode: 'basic', rules: [{ repositories: '**', users: ['mirror'], actions: ['pull'] }] } },
      { dataDir: seeded.dataDir },
    );
  });
  afterAll(async () => {
    await reg?.close();
    if (reg) await rm(reg.dataDir, { recursive: true, force: true });
  });

  it('answers the Basic challenge with the configured credentials, and fails clearly without them', async () => {
    const client = new UpstreamClient(upstreamConfig(reg.url, { username: 'mirror', password: 'pw-1' }));
    const res = await client.manifest('GET', 'org/app', 'v1');
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('content-type')).toBe(MT.ociManifest);
    await res.discard();

    const anonymous = new UpstreamClient(upstreamConfig(reg.url));
    await expect(anonymous.manifest('GET', 'org/app', 'v1')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });
});

describe('upstream client: token flow, redirects, timeouts, back-off', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(stop));
  });

  it('fetches a token on a Bearer challenge, reuses it until it expires, and follows redirects without it', async () => {
    let tokens = 0;
    const seen: string[] = [];
    const agents = new Set<string | undefined>();
    const cdn = await listen((req, res) => {
      agents.add(req.headers['user-agent']);
      seen.push(`cdn ${req.headers.authorization ?? 'none'}`);
      res.end('blob bytes');
    });
    const registry = await listen((req, res) => {
      agents.add(req.headers['user-agent']);
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/token') {
        tokens++;
        expect(url.searchParams.get('scope')).toBe('repository:org/app:pull');
        expect(url.searchParams.get('service')).toBe('reg');
        expect(req.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ token: `tok-${tokens}`, expires_in: 60 }));
      }
      seen.push(`${req.method} ${url.pathname} ${req.headers.authorization ?? 'none'} ${req.headers.accept ?? ''}`);
      if (req.headers.authorization !== `Bearer tok-${tokens}`) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${registryUrl}/token",service="reg",scope="repository:org/app:pull"` });
        return res.end();
      }
      if (url.pathname.includes('/blobs/')) {
        res.writeHead(307, { location: `${cdn.url}/storage/blob` });
        return res.end();
      }
      res.end('{}');
    });
    const registryUrl = registry.url;
    servers.push(cdn.server, registry.server);

    let now = 1_000_000;
    const client = new UpstreamClient(upstreamConfig(registry.url, { username: 'u', password: 'p' }), () => now);
    const first = await client.manifest('HEAD', 'org/app', 'v1');
    expect(first.status).toBe(200);
    const blob = await client.blob('GET', 'org/app', 'sha256:' + 'a'.repeat(64));
    expect((await blob.text(1024)).toString()).toBe('blob bytes');
    expect(tokens).toBe(1);
    now += 61_000;
    expect((await client.manifest('HEAD', 'org/app', 'v1')).status).toBe(200);
    expect(tokens).toBe(2);

    expect(seen[0]).toMatch(/^HEAD \/v2\/org\/app\/manifests\/v1 none /);
    expect(seen[0]).toContain(MT.ociIndex);
    expect(seen[0]).toContain(MT.dockerManifest);
    expect(seen[1]).toMatch(/^HEAD \/v2\/org\/app\/manifests\/v1 Bearer tok-1 /);
    expect(seen[2]).toMatch(/^GET \/v2\/org\/app\/blobs\/sha256:a+ Bearer tok-1/);
    expect(seen[3]).toBe('cdn none');
    expect(seen[4]).toMatch(/^HEAD \S+ none /); // expired: not sent; challenged and renewed
    expect(seen[5]).toMatch(/Bearer tok-2/);
    // Registry, token server and blob storage alike learn who is asking.
    expect([...agents]).toEqual([`berth/${VERSION}`]);
  });

  it('times out a silent upstream and backs off after repeated failures', async () => {
    let requests = 0;
    const silent = await listen(() => {
      requests++; // never answers
    });
    servers.push(silent.server);
    let now = 0;
    const client = new UpstreamClient(upstreamConfig(silent.url, { timeout: '100ms' }), () => now);
    for (let i = 0; i < 3; i++) {
      await expect(client.manifest('GET', 'org/app', 'v1')).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('upstream "up"') });
    }
    expect(requests).toBe(3);
    await expect(client.manifest('GET', 'org/app', 'v1')).rejects.toThrow(/backing off/);
    expect(requests).toBe(3);
    now += 1001;
    await expect(client.manifest('GET', 'org/app', 'v1')).rejects.toThrow(/no response within 100 ms/);
    expect(requests).toBe(4);
  });
});
