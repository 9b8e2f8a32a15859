/**
 * http.trustedProxies: X-Forwarded-For, -Proto and -Host are believed from the configured
 * proxies only. Behind one, the login throttle, the token realm, webhooks and the access
 * log see the client; without one, forwarded headers change nothing.
 */
import { createServer, request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';
import { pushImage } from '../helpers/oci.js';
import { spawnRegistry } from '../helpers/process.js';
import { startRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';

/** One request from a chosen loopback address (127.0.0.x), as a client or a proxy there would send it. */
function from(
  source: string,
  url: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, localAddress: source, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const AUTH = { mode: 'token', maxLoginFailures: 3, rules: [{ repositories: '**', users: ['*'], actions: ['pull', 'push'] }] };
const USERS = [{ name: 'bob', password: 'bob-Pw-1' }];
const PROXY = '127.0.0.2';

describe('trusted proxies', () => {
  it('the throttle keys on the forwarded client (its rightmost untrusted hop) behind a trusted proxy', async () => {
    const reg = await startRegistry({ http: { trustedProxies: [PROXY] }, auth: AUTH }, { users: USERS });
    try {
      const url = `${reg.url}/token?service=berth`;
      // The attacker puts whatever it likes first in X-Forwarded-For; the proxy appends what it saw.
      const attack = (i: number) => from(PROXY, url, { authorization: basic('bob', `guess-${i}`), 'x-forwarded-for': `10.9.9.${i}, 203.0.113.7` });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await attack(i)).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // Another client behind the same proxy is not locked out with it (another account: bob is).
      const other = await from(PROXY, url, { authorization: basic('alice', 'x'), 'x-forwarded-for': '203.0.113.8' });
      expect(other.status).toBe(401);
      const locked = await from(PROXY, url, { authorization: basic('alice', 'x'), 'x-forwarded-for': '203.0.113.7' });
      expect(locked.status).toBe(429);
      // An untrusted peer's X-Forwarded-For is ignored: it is keyed on its own address.
      const direct = (i: number) => from('127.0.0.3', url, { authorization: basic('carol', `guess-${i}`), 'x-forwarded-for': `198.51.100.${i}` });
      const own: number[] = [];
      for (let i = 0; i < 4; i++) own.push((await direct(i)).status);
      expect(own).toEqual([401, 401, 401, 429]);
    } finally {
      await reg.close();
    }
  });

  it('the token realm follows X-Forwarded-Proto and -Host from a trusted proxy only', async () => {
    const reg = await startRegistry({ http: { trustedProxies: ['127.0.0.2/32'] }, auth: AUTH }, { users: USERS });
    try {
      const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'registry.example' };
      const viaProxy = await from(PROXY, `${reg.url}/v2/`, forwarded);
      expect(viaProxy.headers['www-authenticate']).toBe('Bearer realm="https://registry.example/token",service="berth"');
      const direct = await from('127.0.0.3', `${reg.url}/v2/`, forwarded);
      expect(direct.headers['www-authenticate']).toBe(`Bearer realm="http://${reg.host}/token",service="berth"`);
    } finally {
      await reg.close();
    }
  });

  it('without trusted proxies forwarded headers change nothing', async () => {
    const reg = await startRegistry({ auth: AUTH }, { users: USERS });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await from(PROXY, `${reg.url}/token?service=berth`, {
          authorization: basic('bob', `guess-${i}`),
          'x-forwarded-for': `203.0.113.${i}`,
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
      const res = await from(PROXY, `${reg.url}/v2/`, { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' });
      expect(res.headers['www-authenticate']).toBe(`Bearer realm="http://${reg.host}/token",service="berth"`);
    } finally {
      await reg.close();
    }
  });

  it('webhook events name the forwarded client as request.addr', async () => {
    const bodies: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as { port: number };
    const reg = await startRegistry({
      http: { trustedProxies: ['loopback'] },
      notifications: { endpoints: [{ name: 'n', url: `http://127.0.0.1:${port}/hook`, events: ['pull'] }] },
    });
    try {
      const image = await pushImage(reg.url, 'team/app', 'v1');
      const pulled = await from(PROXY, `${reg.url}/v2/team/app/manifests/v1`, { accept: image.mediaType, 'x-forwarded-for': '203.0.113.9' });
      expect(pulled.status).toBe(200);
      for (let i = 0; i < 400 && bodies.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(JSON.parse(bodies[0]!).request.addr).toBe('203.0.113.9');
    } finally {
      await reg.close();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('access log lines name the forwarded client, from the routes and from the hot path alike (env as JSON)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-test-proxies-'));
    const registry = await spawnRegistry(dir, { BERTH_HTTP_TRUSTED_PROXIES: JSON.stringify([PROXY]) });
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: registry.child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    try {
      const image = await pushImage(registry.url, 'team/app', 'v1');
      const path = '/v2/team/app/manifests/v1';
      for (const url of [`${path}?via=routes`, path]) {
        expect((await from(PROXY, `${registry.url}${url}`, { 'x-forwarded-for': '203.0.113.10' }, 'HEAD')).status).toBe(200);
      }
      expect((await from('127.0.0.3', `${registry.url}${path}`, { 'x-forwarded-for': '203.0.113.11' }, 'HEAD')).status).toBe(200);
      registry.child.kill('SIGTERM');
      await registry.exited;
      const heads = lines.filter((l) => l.msg === 'request' && l.method === 'HEAD' && String(l.url).startsWith(path));
      expect(heads.map((l) => l.remoteAddress)).toEqual(['203.0.113.10', '203.0.113.10', '127.0.0.3']);
      expect(image.digest).toMatch(/^sha256:/);
    } finally {
      registry.child.kill('SIGKILL');
      await registry.exited;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an entry that is no address, range or keyword', () => {
    expect(parseConfig(undefined, { BERTH_HTTP_TRUSTED_PROXIES: '["10.0.0.0/8","fd00::/8","loopback"]' }).http.trustedProxies).toEqual([
      '10.0.0.0/8',
      'fd00::/8',
      'loopback',
    ]);
    expect(() => parseConfig('http:\n  trustedProxies: [proxy.lan]\n')).toThrow(ConfigError);
    expect(() => parseConfig('http:\n  trustedProxies: ["10.0.0.0/33"]\n')).toThrow(/trustedProxies/);
  });
});
