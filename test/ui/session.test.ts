/**
 * Web UI sign-in over HTTP: the session endpoints, the cookie as one more way the
 * authorizer identifies a caller (for /v2 and the admin API alike), CSRF on changes,
 * revocation on the server, the login throttle, and the modes without sessions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, UserTable } from '../../src/auth/users.js';
import { MetadataIndex } from '../../src/db/index.js';
import { as, LAN_AUTH, pushAs, seedLan, USERS, type Seeded } from '../auth/lan.js';
import { call, expectError, type Res } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';

const json = { 'content-type': 'application/json' };
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

function sessionCookieOf(res: Res): string {
  const setCookie = res.headers.get('set-cookie') ?? '';
  const match = /berth_session=([^;]*)/.exec(setCookie);
  expect(match, setCookie).toBeTruthy();
  return `berth_session=${match![1]}`;
}

function sessionRows(dataDir: string): Array<{ id: string; user_name: string; expires_at: number }> {
  const db = new Database(join(dataDir, 'index.db'), { readonly: true });
  try {
    return db.prepare('SELECT id, user_name, expires_at FROM sessions').all() as Array<{ id: string; user_name: string; expires_at: number }>;
  } finally {
    db.close();
  }
}

describe('web UI sessions, mode basic', () => {
  let seeded: Seeded;
  let reg: TestRegistry;
  const signIn = (name: string, password: string, headers: Record<string, string> = {}) =>
    call(reg.url, 'POST', '/_berth/api/session', { headers: { ...json, ...headers }, body: JSON.stringify({ username: name, password }) });

  beforeAll(async () => {
    seeded = await seedLan();
    reg = await startRegistry({ auth: { mode: 'basic', ...LAN_AUTH } }, { dataDir: seeded.dataDir });
  });
  afterAll(async () => {
    await reg?.close();
    await rm(seeded.dataDir, { recursive: true, force: true });
  });

  it('says who is signed in: nobody without a cookie', async () => {
    const res = await call(reg.url, 'GET', '/_berth/api/session');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.json()).toEqual({ mode: 'basic', user: null, groups: [], admin: false, csrfToken: null });
  });

  it('signs in with a user name and password: an HttpOnly, SameSite=Strict cookie naming a session stored hashed', async () => {
    const before = sessionRows(reg.dataDir).length;
    const res = await signIn('alice', USERS.alice.password);
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ mode: 'basic', user: 'alice', groups: ['admins'], admin: true });
    expect(body.csrfToken).toMatch(/^[\w-]{20,}$/);
    const setCookie = res.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^berth_session=[\w-]{40,}; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(setCookie).not.toMatch(/Secure/); // plain HTTP: a Secure cookie would never come back
    const cookie = sessionCookieOf(res);
    const rows = sessionRows(reg.dataDir);
    expect(rows.length).toBe(before + 1);
    const value = cookie.slice('berth_session='.length);
    expect(rows.some((r) => r.id.includes(value))).toBe(false); // the index never holds the cookie's value

    const again = await call(reg.url, 'GET', '/_berth/api/session', { headers: { cookie } });
    expect(again.json()).toEqual({ mode: 'basic', user: 'alice', groups: ['admins'], admin: true, csrfToken: body.csrfToken });
  });

  it('refuses a wrong password with 401 and no challenge (the form, not the browser, asks again), storing nothing', async () => {
    const before = sessionRows(reg.dataDir).length;
    for (const [name, password] of [
      ['alice', 'wrong'],
      ['nobody', 'x'],
    ] as const) {
      const res = await signIn(name, password, { 'x-forwarded-for': 'ignored' });
      expectError(res, 401, 'UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toBeNull();
      expect(res.headers.get('set-cookie')).toBeNull();
    }
    expect(sessionRows(reg.dataDir).length).toBe(before);
  });

  it('refuses malformed sign-ins with 400 and form posts (not JSON) with 415', async () => {
    expectError(await call(reg.url, 'POST', '/_berth/api/session', { headers: json, body: '{"username":"alice"}' }), 400, 'UNSUPPORTED');
    expectError(await call(reg.url, 'POST', '/_berth/api/session', { headers: json, body: '[]' }), 400, 'UNSUPPORTED');
    const form = await call(reg.url, 'POST', '/_berth/api/session', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `username=alice&password=${USERS.alice.password}`,
    });
    expect(form.status).toBe(415);
    expect(form.headers.get('set-cookie')).toBeNull();
  });

  it('the cookie authenticates /v2 and the admin API like Basic credentials; Authorization wins when both come', async () => {
    const cookie = sessionCookieOf(await signIn('reader', USERS.reader.password));
    expectError(await call(reg.url, 'GET', '/v2/internal/app/manifests/v1'), 401, 'UNAUTHORIZED');
    const pulled = await call(reg.url, 'GET', '/v2/internal/app/manifests/v1', { headers: { cookie, accept: '*/*' } });
    expect(pulled.status).toBe(200);
    expectError(await call(reg.url, 'GET', '/v2/secret/x/manifests/v1', { headers: { cookie } }), 403, 'DENIED');
    expectError(await call(reg.url, 'GET', '/_berth/admin/usage', { headers: { cookie } }), 403, 'DENIED');
    const catalog = await call(reg.url, 'GET', '/v2/_catalog', { headers: { cookie } });
    expect(catalog.json().repositories).toEqual(['ci/app', 'internal/app', 'team/app']);
    // Wrong Basic credentials are a failure even with a good cookie.
    expectError(await call(reg.url, 'GET', '/v2/internal/app/manifests/v1', { headers: { cookie, authorization: basic('reader', 'nope') } }), 401, 'UNAUTHORIZED');
  });

  it('a cookie naming no session counts for nothing', async () => {
    for (const cookie of ['berth_session=forged-value-forged-value-forged-value', 'berth_session=', 'other=1']) {
      expectError(await call(reg.url, 'GET', '/v2/internal/app/manifests/v1', { headers: { cookie } }), 401, 'UNAUTHORIZED');
      const session = await call(reg.url, 'GET', '/_berth/api/session', { headers: { cookie } });
      expect(session.json().user).toBeNull();
    }
  });

  it('changes made with the cookie need the session CSRF token: without it 403 DENIED and nothing deleted', async () => {
    expect((await pushAs(reg.url, 'team/csrf', 'keep', as(USERS.alice))).statuses).toEqual([201, 201, 201]);
    const res = await signIn('alice', USERS.alice.password);
    const cookie = sessionCookieOf(res);
    const csrf = res.json().csrfToken as string;
    const other = (await signIn('bob', USERS.bob.password)).json().csrfToken as string;
    const attempts: Array<Record<string, string>> = [{ cookie }, { cookie, 'x-berth-csrf': 'wrong' }, { cookie, 'x-berth-csrf': other }, { cookie, 'x-berth-csrf': '' }];
    for (const headers of attempts) {
      expectError(await call(reg.url, 'DELETE', '/v2/team/csrf/manifests/keep', { headers }), 403, 'DENIED');
      expectError(await call(reg.url, 'POST', '/_berth/admin/gc?dryRun=true', { headers }), 403, 'DENIED');
    }
    expect((await call(reg.url, 'GET', '/v2/team/csrf/tags/list')).json().tags).toEqual(['keep']);
    // Reads need no token.
    expect((await call(reg.url, 'GET', '/v2/team/csrf/tags/list', { headers: { cookie } })).status).toBe(200);
    const deleted = await call(reg.url, 'DELETE', '/v2/team/csrf/manifests/keep', { headers: { cookie, 'x-berth-csrf': csrf } });
    expect(deleted.status, deleted.text).toBe(202);
    expect((await call(reg.url, 'GET', '/v2/team/csrf/tags/list')).json().tags).toEqual([]);
    const gc = await call(reg.url, 'POST', '/_berth/admin/gc?dryRun=true', { headers: { cookie, 'x-berth-csrf': csrf } });
    expect(gc.status, gc.text).toBe(200);
  });

  it('a pull-only user signed in may not delete, CSRF token or not', async () => {
    const res = await signIn('reader', USERS.reader.password);
    const headers = { cookie: sessionCookieOf(res), 'x-berth-csrf': res.json().csrfToken as string };
    expect(res.json().admin).toBe(false);
    expectError(await call(reg.url, 'DELETE', '/v2/team/app/manifests/v1', { headers }), 403, 'DENIED');
    expectError(await call(reg.url, 'POST', '/_berth/admin/gc', { headers }), 403, 'DENIED');
    expect((await call(reg.url, 'GET', '/v2/team/app/tags/list')).json().tags).toEqual(['v1']);
  });

  it('signing out needs the CSRF token, then ends the session on the server and clears the cookie', async () => {
    const res = await signIn('reader', USERS.reader.password);
    const cookie = sessionCookieOf(res);
    const csrf = res.json().csrfToken as string;
    expectError(await call(reg.url, 'DELETE', '/_berth/api/session', { headers: { cookie } }), 403, 'DENIED');
    expect((await call(reg.url, 'GET', '/v2/internal/app/tags/list', { headers: { cookie } })).status).toBe(200);
    const before = sessionRows(reg.dataDir).length;
    const out = await call(reg.url, 'DELETE', '/_berth/api/session', { headers: { cookie, 'x-berth-csrf': csrf } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe('berth_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict');
    expect(sessionRows(reg.dataDir).length).toBe(before - 1);
    // A copy of the cookie kept by an attacker is worth nothing now.
    expectError(await call(reg.url, 'GET', '/v2/internal/app/tags/list', { headers: { cookie } }), 401, 'UNAUTHORIZED');
    // Signing out without a session just clears the cookie.
    expect((await call(reg.url, 'DELETE', '/_berth/api/session')).status).toBe(204);
  });

  it('a changed password or a removed user ends their sessions at once', async () => {
    const index = new MetadataIndex(join(reg.dataDir, 'index.db'), { durable: false });
    try {
      const users = new UserTable(index.database);
      expect(users.add('temp', await hashPassword('temp-Pw-1'), [])).toBe(true);
      const first = sessionCookieOf(await signIn('temp', 'temp-Pw-1'));
      expect((await call(reg.url, 'GET', '/_berth/api/session', { headers: { cookie: first } })).json().user).toBe('temp');
      users.setPassword('temp', await hashPassword('temp-Pw-2'));
      expect((await call(reg.url, 'GET', '/_berth/api/session', { headers: { cookie: first } })).json().user).toBeNull();
      const second = sessionCookieOf(await signIn('temp', 'temp-Pw-2'));
      expect((await call(reg.url, 'GET', '/v2/team/app/tags/list', { headers: { cookie: second } })).status).toBe(200);
      users.remove('temp');
      expect((await call(reg.url, 'GET', '/_berth/api/session', { headers: { cookie: second } })).json().user).toBeNull();
    } finally {
      index.close();
    }
  });

  it("a page's background requests get 401 without the Basic challenge (no browser password dialog); other clients keep it", async () => {
    const plain = await call(reg.url, 'GET', '/v2/secret/x/tags/list');
    expect(plain.headers.get('www-authenticate')).toMatch(/^Basic /);
    const fromPage = await call(reg.url, 'GET', '/v2/secret/x/tags/list', { headers: { 'x-requested-with': 'XMLHttpRequest' } });
    expectError(fromPage, 401, 'UNAUTHORIZED');
    expect(fromPage.headers.get('www-authenticate')).toBeNull();
  });
});

describe('web UI sessions in the other modes', () => {
  const closers: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('sign-ins count towards the failed-login limit shared with HTTP Basic', async () => {
    const reg = await startRegistry(
      { auth: { mode: 'basic', ...LAN_AUTH, maxLoginFailures: 3 } },
      { users: [{ name: 'victim', password: 'victim-Pw-1' }] },
    );
    closers.push(() => reg.close());
    const signIn = (password: string) =>
      call(reg.url, 'POST', '/_berth/api/session', { headers: json, body: JSON.stringify({ username: 'victim', password }) });
    expectError(await signIn('guess-1'), 401, 'UNAUTHORIZED');
    expectError(await call(reg.url, 'GET', '/v2/team/app/tags/list', { headers: { authorization: basic('victim', 'guess-2') } }), 401, 'UNAUTHORIZED');
    expectError(await signIn('guess-3'), 401, 'UNAUTHORIZED');
    const locked = await signIn('victim-Pw-1');
    expectError(locked, 429, 'TOOMANYREQUESTS');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(locked.headers.get('set-cookie')).toBeNull();
    expect(sessionRows(reg.dataDir)).toEqual([]);
  });

  it('mode token: the cookie authenticates like a token, and anonymous callers still get the Bearer challenge', async () => {
    const seeded = await seedLan();
    closers.push(() => rm(seeded.dataDir, { recursive: true, force: true }));
    const reg = await startRegistry({ auth: { mode: 'token', ...LAN_AUTH } }, { dataDir: seeded.dataDir });
    closers.push(() => reg.close());
    const res = await call(reg.url, 'POST', '/_berth/api/session', {
      headers: json,
      body: JSON.stringify({ username: 'reader', password: USERS.reader.password }),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ mode: 'token', user: 'reader', admin: false });
    const anonymous = await call(reg.url, 'GET', '/v2/internal/app/tags/list', { headers: { 'x-requested-with': 'XMLHttpRequest' } });
    expectError(anonymous, 401, 'UNAUTHORIZED');
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    const withCookie = await call(reg.url, 'GET', '/v2/internal/app/tags/list', { headers: { cookie: sessionCookieOf(res) } });
    expect(withCookie.status).toBe(200);
  });

  it('over TLS the cookie is Secure', async () => {
    const certs = await mkdtemp(join(tmpdir(), 'berth-ui-certs-'));
    closers.push(() => rm(certs, { recursive: true, force: true }));
    const made = spawnSync(process.execPath, [CLI, 'cert', 'self-signed', '--host', '127.0.0.1', '--out', certs], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const reg = await startRegistry(
      { http: { tlsCert: join(certs, 'server.crt'), tlsKey: join(certs, 'server.key') }, auth: { mode: 'basic', ...LAN_AUTH } },
      { users: [USERS.reader] },
    );
    closers.push(() => reg.close());
    const ca = await readFile(join(certs, 'ca.crt'));
    const setCookie = await new Promise<string | undefined>((resolve, reject) => {
      const req = httpsRequest(
        `https://${reg.host}/_berth/api/session`,
        { method: 'POST', ca, agent: false, headers: json },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve(res.headers['set-cookie']?.[0]) : reject(new Error(`status ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ username: 'reader', password: USERS.reader.password }));
    });
    expect(setCookie).toMatch(/^berth_session=[\w-]+; Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
  });

  it('mode none: everyone is an administrator without signing in, and there is nothing to sign in to', async () => {
    const reg = await startRegistry();
    closers.push(() => reg.close());
    const session = await call(reg.url, 'GET', '/_berth/api/session');
    expect(session.json()).toEqual({ mode: 'none', user: null, groups: [], admin: true, csrfToken: null });
    const res = await call(reg.url, 'POST', '/_berth/api/session', { headers: json, body: '{"username":"a","password":"b"}' });
    expectError(res, 405, 'UNSUPPORTED');
    expect((await call(reg.url, 'DELETE', '/_berth/api/session')).status).toBe(204);
  });

  it('ui.enabled false: no pages, no session endpoints, and session cookies count for nothing', async () => {
    const seeded = await seedLan();
    closers.push(() => rm(seeded.dataDir, { recursive: true, force: true }));
    const on = await startRegistry({ auth: { mode: 'basic', ...LAN_AUTH } }, { dataDir: seeded.dataDir });
    const res = await call(on.url, 'POST', '/_berth/api/session', {
      headers: json,
      body: JSON.stringify({ username: 'reader', password: USERS.reader.password }),
    });
    const cookie = sessionCookieOf(res);
    expect((await call(on.url, 'GET', '/v2/internal/app/tags/list', { headers: { cookie } })).status).toBe(200);
    await on.close();

    const off = await startRegistry({ auth: { mode: 'basic', ...LAN_AUTH }, ui: { enabled: false } }, { dataDir: seeded.dataDir });
    closers.push(() => off.close());
    expectError(await call(off.url, 'GET', '/'), 404, 'UNSUPPORTED');
    expectError(await call(off.url, 'GET', '/repositories/team/app'), 404, 'UNSUPPORTED');
    expectError(await call(off.url, 'GET', '/_berth/api/session'), 404, 'UNSUPPORTED');
    expectError(await call(off.url, 'GET', '/v2/internal/app/tags/list', { headers: { cookie } }), 401, 'UNAUTHORIZED');
    const basicChallenge = await call(off.url, 'GET', '/v2/internal/app/tags/list', { headers: { 'x-requested-with': 'XMLHttpRequest' } });
    expect(basicChallenge.headers.get('www-authenticate')).toMatch(/^Basic /);
  });
});
