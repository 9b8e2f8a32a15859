/**
 * Mode token: a scripted replay of `docker login` + push (challenge -> token -> retry,
 * with GET + Basic and with the OAuth2 POST form), the token's claims, scope narrowing,
 * expiry with leeway, the signing key, and tokens from an external issuer.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, exportJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, type Res } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { VERSION } from '../../src/version.js';
import { as, LAN_AUTH, layerOf, pushAs, seedLan, USERS, type Seeded } from './lan.js';

/** The parameters of a `Bearer k="v",…` challenge. */
function challenge(res: Res): Record<string, string> {
  const header = res.headers.get('www-authenticate') ?? '';
  expect(header).toMatch(/^Bearer /);
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('mode token', () => {
  let seeded: Seeded;
  let reg: TestRegistry;
  const tokenFor = async (scope: string[], headers: Record<string, string> = {}) => {
    const query = new URLSearchParams([['service', 'berth'], ...scope.map((s) => ['scope', s])]);
    const res = await call(reg.url, 'GET', `/token?${query}`, { headers });
    expect(res.status, res.text).toBe(200);
    return res.json().token as string;
  };

  beforeAll(async () => {
    seeded = await seedLan();
    reg = await startRegistry({ auth: { mode: 'token', ...LAN_AUTH } }, { dataDir: seeded.dataDir });
  });
  afterAll(async () => {
    await reg?.close();
    await rm(seeded.dataDir, { recursive: true, force: true });
  });

  it('replays docker login: /v2/ challenge, token with Basic credentials, retry', async () => {
    const ping = await call(reg.url, 'GET', '/v2/');
    expectError(ping, 401, 'UNAUTHORIZED');
    expect(ping.headers.get('www-authenticate')).toBe(`Bearer realm="${reg.url}/token",service="berth"`);
    const { realm, service } = challenge(ping);
    const login = await call(realm!, 'GET', `/token?account=ci&client_id=docker&offline_token=true&service=${service}`, {
      headers: as(USERS.ci),
    });
    expect(login.status).toBe(200);
    expect(login.headers.get('cache-control')).toBe('no-store');
    const body = login.json();
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Date.parse(body.issued_at)).toBeGreaterThan(Date.now() - 60_000);
    expect((await call(reg.url, 'GET', '/v2/', { headers: bearer(body.token) })).status).toBe(200);

    const wrong = await call(realm!, 'GET', `/token?account=ci&service=${service}`, { headers: { authorization: basic('ci', 'bad') } });
    expectError(wrong, 401, 'UNAUTHORIZED');
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="Berth", charset="UTF-8"');
  });

  it('replays a push: challenge with the scope, token for it, retry with the token', async () => {
    const first = await call(reg.url, 'POST', '/v2/ci/app/blobs/uploads/');
    expectError(first, 401, 'UNAUTHORIZED');
    const params = challenge(first);
    expect(params).toEqual({ realm: `${reg.url}/token`, service: 'berth', scope: 'repository:ci/app:pull,push' });

    const token = await tokenFor([params.scope!], as(USERS.ci));
    const claims = decodeJwt(token);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(claims).toMatchObject({ iss: 'berth', sub: 'ci', aud: 'berth' });
    expect(claims.access).toEqual([{ type: 'repository', name: 'ci/app', actions: ['pull', 'push'] }]);
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(typeof claims.jti).toBe('string');

    const pushed = await pushAs(reg.url, 'ci/app', 'v2', bearer(token));
    expect(pushed.statuses).toEqual([201, 201, 201]);
    // The token is scoped: another repository needs another token.
    const other = await call(reg.url, 'POST', '/v2/ci/other/blobs/uploads/', { headers: bearer(token) });
    expectError(other, 401, 'UNAUTHORIZED');
    expect(challenge(other)).toMatchObject({ scope: 'repository:ci/other:pull,push', error: 'insufficient_scope' });
  });

  it('the OAuth2 POST form (containerd) issues tokens too', async () => {
    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'ci',
      password: USERS.ci.password,
      service: 'berth',
      scope: 'repository:ci/form:pull,push',
      client_id: 'containerd-client',
    });
    const res = await call(reg.url, 'POST', '/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json().scope).toBe('repository:ci/form:pull,push');
    expect((await pushAs(reg.url, 'ci/form', '1', bearer(res.json().access_token))).statuses).toEqual([201, 201, 201]);

    form.set('password', 'wrong');
    const wrong = await call(reg.url, 'POST', '/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    expectError(wrong, 401, 'UNAUTHORIZED');
    form.set('grant_type', 'refresh_token');
    const refresh = await call(reg.url, 'POST', '/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    expect(refresh.status).toBe(400);
  });

  it('tokens carry only what the rules allow: a pull-only user gets 403 DENIED on push and delete', async () => {
    const token = await tokenFor(['repository:team/app:pull,push,delete'], as(USERS.reader));
    expect(decodeJwt(token).access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    expect((await call(reg.url, 'GET', '/v2/team/app/manifests/v1', { headers: bearer(token) })).status).toBe(200);
    expectError(await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: bearer(token) }), 403, 'DENIED');
    const digest = seeded.images.team.digest;
    expectError(await call(reg.url, 'DELETE', `/v2/team/app/manifests/${digest}`, { headers: bearer(token) }), 403, 'DENIED');
    // ci may not push outside ci/**.
    const ci = await tokenFor(['repository:team/app:pull,push'], as(USERS.ci));
    expectError(await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: bearer(ci) }), 403, 'DENIED');
  });

  it('anonymous tokens pull where a rule allows it, and nothing else', async () => {
    const token = await tokenFor(['repository:team/app:pull,push', 'repository:internal/app:pull']);
    const claims = decodeJwt(token);
    expect(claims.sub).toBe('');
    expect(claims.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    expect((await call(reg.url, 'GET', '/v2/team/app/manifests/v1', { headers: bearer(token) })).status).toBe(200);
    const push = await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: bearer(token) });
    expectError(push, 401, 'UNAUTHORIZED');
    expect(challenge(push).scope).toBe('repository:team/app:pull,push');
    expectError(await call(reg.url, 'GET', '/v2/internal/app/manifests/v1', { headers: bearer(token) }), 401, 'UNAUTHORIZED');
    // Without any token: the rules for anonymous callers, as in mode basic.
    expect((await call(reg.url, 'GET', '/v2/team/app/manifests/v1')).status).toBe(200);
  });

  it('a valid token without the scope its holder may have is 401 insufficient_scope; admins delete with the right one', async () => {
    const pushed = await pushAs(reg.url, 'team/t', '1', as(USERS.alice)); // Basic is accepted in token mode too
    expect(pushed.statuses).toEqual([201, 201, 201]);
    const pullOnly = await tokenFor(['repository:team/t:pull'], as(USERS.alice));
    const res = await call(reg.url, 'DELETE', `/v2/team/t/manifests/${pushed.digest}`, { headers: bearer(pullOnly) });
    expectError(res, 401, 'UNAUTHORIZED');
    expect(challenge(res)).toMatchObject({ scope: 'repository:team/t:delete', error: 'insufficient_scope' });
    const del = await tokenFor(['repository:team/t:delete'], as(USERS.alice));
    expect((await call(reg.url, 'DELETE', `/v2/team/t/manifests/${pushed.digest}`, { headers: bearer(del) })).status).toBe(202);
  });

  it('a token scoped to one repository neither mounts from another nor lists the catalog, whatever the rules allow its user', async () => {
    const layer = layerOf(seeded.images.team); // the rules let ci pull team/app
    const token = await tokenFor(['repository:ci/scoped:pull,push'], as(USERS.ci));
    // With `from`: 401, and the challenge names the source, so that the client asks for it.
    const withFrom = await call(reg.url, 'POST', `/v2/ci/scoped/blobs/uploads/?mount=${layer}&from=team/app`, { headers: bearer(token) });
    expectError(withFrom, 401, 'UNAUTHORIZED');
    expect(challenge(withFrom)).toMatchObject({ scope: 'repository:ci/scoped:pull,push repository:team/app:pull', error: 'insufficient_scope' });
    // Without `from` (automatic), or from a source the rules do not let ci read: an ordinary upload session.
    for (const query of [`mount=${layer}`, `mount=${layerOf(seeded.images.secret)}&from=secret/x`]) {
      const mount = await call(reg.url, 'POST', `/v2/ci/scoped/blobs/uploads/?${query}`, { headers: bearer(token) });
      expect(mount.status).toBe(202);
      expect(mount.headers.get('location')).toMatch(/^\/v2\/ci\/scoped\/blobs\/uploads\//);
    }
    for (const digest of [layer, layerOf(seeded.images.secret)]) {
      expect((await call(reg.url, 'HEAD', `/v2/ci/scoped/blobs/${digest}`, { headers: bearer(token) })).status).toBe(404);
    }
    const catalog = await call(reg.url, 'GET', '/v2/_catalog', { headers: bearer(token) });
    expectError(catalog, 401, 'UNAUTHORIZED');
    expect(challenge(catalog)).toMatchObject({ scope: 'registry:catalog:*', error: 'insufficient_scope' });
    // With the source in the token (docker asks for it), the mount happens.
    const both = await tokenFor(['repository:ci/scoped:pull,push', 'repository:team/app:pull'], as(USERS.ci));
    const mounted = await call(reg.url, 'POST', `/v2/ci/scoped/blobs/uploads/?mount=${layer}&from=team/app`, { headers: bearer(both) });
    expect(mounted.status).toBe(201);
    expect((await call(reg.url, 'HEAD', `/v2/ci/scoped/blobs/${layer}`, { headers: bearer(token) })).status).toBe(200);
  });

  it('anonymous _catalog without a token is 401 with the catalog scope in the challenge', async () => {
    const res = await call(reg.url, 'GET', '/v2/_catalog');
    expectError(res, 401, 'UNAUTHORIZED');
    expect(challenge(res)).toEqual({ realm: `${reg.url}/token`, service: 'berth', scope: 'registry:catalog:*' });
    // Basic credentials are accepted as on every request: the listing of what the user may pull.
    expect((await call(reg.url, 'GET', '/v2/_catalog', { headers: as(USERS.reader) })).json().repositories).toContain('internal/app');
  });

  it('_catalog with a token is filtered by the rules', async () => {
    const anonymous = await tokenFor(['registry:catalog:*']);
    expect(decodeJwt(anonymous).access).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    const seen = (await call(reg.url, 'GET', '/v2/_catalog', { headers: bearer(anonymous) })).json().repositories;
    expect(seen).toContain('team/app');
    expect(seen).not.toContain('internal/app');
    expect(seen).not.toContain('secret/x');
    const reader = await tokenFor(['registry:catalog:*'], as(USERS.reader));
    expect((await call(reg.url, 'GET', '/v2/_catalog', { headers: bearer(reader) })).json().repositories).toContain('internal/app');
  });

  it('checks signature, issuer, audience and expiry with the configured leeway', async () => {
    const key = createPrivateKey(await readFile(join(seeded.dataDir, 'token-signing-key.pem'), 'utf8'));
    const now = Math.floor(Date.now() / 1000);
    const access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
    const mint = (claims: { iss?: string; aud?: string; exp: number; nbf?: number }, signingKey = key, sub = 'reader') =>
      new SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(claims.iss ?? 'berth')
        .setAudience(claims.aud ?? 'berth')
        .setSubject(sub)
        .setIssuedAt(now - 600)
        .setNotBefore(claims.nbf ?? now - 600)
        .setExpirationTime(claims.exp)
        .sign(signingKey);
    const status = async (token: string) => {
      const res = await call(reg.url, 'GET', '/v2/team/app/tags/list', { headers: bearer(token) });
      if (res.status === 401) expect(challenge(res).error).toBe('invalid_token');
      return res.status;
    };
    expect(await status(await mint({ exp: now + 60 }))).toBe(200);
    expect(await status(await mint({ exp: now - 10 }))).toBe(200); // within the 30 s leeway
    expect(await status(await mint({ exp: now - 120 }))).toBe(401);
    expect(await status(await mint({ exp: now + 60, nbf: now + 120 }))).toBe(401);
    expect(await status(await mint({ exp: now + 60, iss: 'someone-else' }))).toBe(401);
    expect(await status(await mint({ exp: now + 60, aud: 'other-registry' }))).toBe(401);
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(await status(await mint({ exp: now + 60 }, stranger))).toBe(401);
    expect(await status(await mint({ exp: now + 60 }, key, 'no-such-user'))).toBe(401);
    const valid = await mint({ exp: now + 60 });
    expect(await status(valid.slice(0, -4) + (valid.endsWith('AAAA') ? 'BBBB' : 'AAAA'))).toBe(401);
    expect(await status('not-a-jwt')).toBe(401);
  });

  it('keeps its signing key (mode 0600) across restarts', async () => {
    const file = join(seeded.dataDir, 'token-signing-key.pem');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const before = await readFile(file, 'utf8');
    const token = await tokenFor(['repository:team/app:pull'], as(USERS.reader));
    await reg.close();
    reg = await startRegistry({ auth: { mode: 'token', ...LAN_AUTH } }, { dataDir: seeded.dataDir });
    expect(await readFile(file, 'utf8')).toBe(before);
    expect((await call(reg.url, 'GET', '/v2/team/app/tags/list', { headers: bearer(token) })).status).toBe(200);
  });
});

describe('mode token: algorithms and rate limiting', () => {
  it('RS256 on request; failed token requests are throttled per user with 429', async () => {
    const reg = await startRegistry(
      { auth: { mode: 'token', tokenAlgorithm: 'RS256', tokenExpiry: '90s', maxLoginFailures: 3, ...LAN_AUTH } },
      { users: [USERS.ci] },
    );
    try {
      const res = await call(reg.url, 'GET', '/token?service=berth&scope=repository:ci/x:push', { headers: as(USERS.ci) });
      expect(decodeProtectedHeader(res.json().token).alg).toBe('RS256');
      expect(res.json().expires_in).toBe(90);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await call(reg.url, 'GET', '/token?service=berth', { headers: { authorization: basic('ci', `x${i}`) } })).status);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      const locked = await call(reg.url, 'GET', '/token?service=berth', { headers: as(USERS.ci) });
      expectError(locked, 429, 'TOOMANYREQUESTS');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      // A configured key file that does not exist is an error, not a silently generated key.
      await expect(
        startRegistry({ auth: { mode: 'token', tokenKey: join(reg.dataDir, 'missing.pem') } }),
      ).rejects.toThrow(/ENOENT/);
    } finally {
      await reg.close();
    }
  });
});

describe('mode token with an external issuer', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let jwks: Server;
  let jwksUrl: string;
  const jwksAgents = new Set<string | undefined>();

  beforeAll(async () => {
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwks = createServer((req, res) => {
      jwksAgents.add(req.headers['user-agent']);
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const address = jwks.address() as { port: number };
    jwksUrl = `http://127.0.0.1:${address.port}/jwks.json`;
  });
  afterAll(async () => {
    jwks.closeAllConnections();
    await new Promise((resolve) => jwks.close(resolve));
  });

  const mint = (access: unknown[], sub = 'dave', alg = 'ES256') =>
    new SignJWT({ access })
      .setProtectedHeader({ alg, kid: 'k1' })
      .setIssuer('corp-auth')
      .setAudience('registry.lan')
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  for (const source of ['public key file', 'JWKS'] as const) {
    it(`verifies tokens by ${source}; the rules still apply to their subject`, async () => {
      const reg = await startRegistry({});
      await reg.close();
      const keyFile = join(reg.dataDir, '..', `issuer-${Date.now()}.pem`);
      await writeFile(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
      const ext = await startRegistry({
        auth: {
          mode: 'token',
          tokenRealm: 'https://auth.lan/token',
          tokenIssuer: 'corp-auth',
          tokenService: 'registry.lan',
          ...(source === 'JWKS' ? { tokenJwks: jwksUrl } : { tokenPublicKey: keyFile }),
          rules: [
            { repositories: 'locked/**', users: ['*'], actions: [] },
            { repositories: '**', users: ['authenticated'], actions: ['pull', 'push', 'delete'] },
          ],
        },
      });
      try {
        const ping = await call(ext.url, 'GET', '/v2/');
        expect(ping.headers.get('www-authenticate')).toBe('Bearer realm="https://auth.lan/token",service="registry.lan"');
        expect((await call(ext.url, 'GET', '/token')).status).toBe(404); // no token endpoint of its own
        const token = await mint([{ type: 'repository', name: 'team/x', actions: ['pull', 'push'] }]);
        expect((await pushAs(ext.url, 'team/x', '1', bearer(token))).statuses).toEqual([201, 201, 201]);
        // The issuer did not grant delete: 401 insufficient_scope.
        const del = await call(ext.url, 'DELETE', '/v2/team/x/manifests/1', { headers: bearer(token) });
        expect(challenge(del)).toMatchObject({ error: 'insufficient_scope', scope: 'repository:team/x:delete' });
        // The rules deny locked/** whatever the token says.
        const locked = await mint([{ type: 'repository', name: 'locked/x', actions: ['pull', 'push'] }]);
        expectError(await call(ext.url, 'POST', '/v2/locked/x/blobs/uploads/', { headers: bearer(locked) }), 403, 'DENIED');
        // Only the issuer's key is trusted.
        const forged = await new SignJWT({ access: [{ type: 'repository', name: 'team/x', actions: ['pull'] }] })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer('corp-auth')
          .setAudience('registry.lan')
          .setSubject('dave')
          .setExpirationTime('5m')
          .sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
        expectError(await call(ext.url, 'GET', '/v2/team/x/tags/list', { headers: bearer(forged) }), 401, 'UNAUTHORIZED');
        expect((await call(ext.url, 'GET', '/v2/team/x/tags/list', { headers: bearer(token) })).status).toBe(200);
        if (source === 'JWKS') expect([...jwksAgents]).toEqual([`berth/${VERSION}`]);
      } finally {
        await ext.close();
        await rm(keyFile, { force: true });
      }
    });
  }
});
