/**
 * Mode basic over HTTP: every rule path of the LAN example, the challenges, `_catalog`
 * filtering, cross-repository mounts, live user changes, htpasswd files and the
 * failed-login throttle.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashSync } from '@node-rs/bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, UserTable } from '../../src/auth/users.js';
import { MetadataIndex } from '../../src/db/index.js';
import { call, expectError, sha256 } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { as, LAN_AUTH, layerOf, pushAs, requestFrom, seedLan, USERS, type Seeded } from './lan.js';

const CHALLENGE = 'Basic realm="Berth", charset="UTF-8"';

describe('mode basic', () => {
  let seeded: Seeded;
  let reg: TestRegistry;
  const get = (path: string, headers: Record<string, string> = {}) => call(reg.url, 'GET', path, { headers });

  beforeAll(async () => {
    seeded = await seedLan();
    reg = await startRegistry(
      { auth: { mode: 'basic', ...LAN_AUTH } },
      { dataDir: seeded.dataDir },
    );
  });
  afterAll(async () => {
    await reg?.close();
    await rm(seeded.dataDir, { recursive: true, force: true });
  });

  it('/v2/ asks anonymous callers to log in and accepts valid credentials', async () => {
    const anonymous = await get('/v2/');
    expectError(anonymous, 401, 'UNAUTHORIZED');
    expect(anonymous.headers.get('www-authenticate')).toBe(CHALLENGE);
    expect((await get('/v2/', as(USERS.reader))).status).toBe(200);
    const wrong = await get('/v2/', { authorization: basic('reader', 'nope') });
    expectError(wrong, 401, 'UNAUTHORIZED');
    expect(wrong.headers.get('www-authenticate')).toBe(CHALLENGE);
    expectError(await get('/v2/', { authorization: basic('nobody', 'x') }), 401, 'UNAUTHORIZED');
    expectError(await get('/v2/', { authorization: 'Bearer abc' }), 401, 'UNAUTHORIZED');
  });

  it('anonymous pull works only where a rule allows it', async () => {
    const { team, internal, secret } = seeded.images;
    expect((await get(`/v2/team/app/manifests/v1`)).status).toBe(200);
    expect((await get(`/v2/team/app/blobs/${layerOf(team)}`)).status).toBe(200);
    const denied = await get(`/v2/internal/app/manifests/v1`);
    expectError(denied, 401, 'UNAUTHORIZED');
    expect(denied.headers.get('www-authenticate')).toBe(CHALLENGE);
    expectError(await get(`/v2/internal/app/blobs/${layerOf(internal)}`), 401, 'UNAUTHORIZED');
    expectError(await get(`/v2/secret/x/manifests/v1`), 401, 'UNAUTHORIZED');
    // Authenticated users read internal/**; only admins read secret/*.
    expect((await get(`/v2/internal/app/manifests/v1`, as(USERS.reader))).status).toBe(200);
    expectError(await get(`/v2/secret/x/manifests/v1`, as(USERS.reader)), 403, 'DENIED');
    expect((await get(`/v2/secret/x/blobs/${layerOf(secret)}`, as(USERS.alice))).status).toBe(200);
  });

  it('a push without or with wrong credentials is 401 with the challenge', async () => {
    for (const headers of [{}, { authorization: basic('ci', 'wrong') }] as Array<Record<string, string>>) {
      const res = await call(reg.url, 'POST', '/v2/ci/app/blobs/uploads/', { headers });
      expectError(res, 401, 'UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toBe(CHALLENGE);
    }
  });

  it('ci pushes to ci/** only; a pull-only user gets 403 DENIED on push and on delete', async () => {
    const pushed = await pushAs(reg.url, 'ci/new/app', '1.0', as(USERS.ci));
    expect(pushed.statuses).toEqual([201, 201, 201]);
    expect((await get('/v2/ci/new/app/manifests/1.0', as(USERS.ci))).status).toBe(200);

    const elsewhere = await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: as(USERS.ci) });
    const error = expectError(elsewhere, 403, 'DENIED');
    expect(error.detail).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    expect(elsewhere.headers.get('www-authenticate')).toBeNull();

    expectError(await call(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: as(USERS.reader) }), 403, 'DENIED');
    expectError(await call(reg.url, 'PUT', '/v2/team/app/manifests/x', { headers: as(USERS.reader), body: '{}' }), 403, 'DENIED');
    const digest = seeded.images.team.digest;
    expectError(await call(reg.url, 'DELETE', `/v2/team/app/manifests/${digest}`, { headers: as(USERS.reader) }), 403, 'DENIED');
    expectError(await call(reg.url, 'DELETE', `/v2/ci/app/manifests/v1`, { headers: as(USERS.ci) }), 403, 'DENIED');
    expectError(
      await call(reg.url, 'DELETE', `/v2/team/app/blobs/${layerOf(seeded.images.team)}`, { headers: as(USERS.reader) }),
      403,
      'DENIED',
    );
    // Nothing was deleted.
    expect((await get(`/v2/team/app/manifests/${digest}`)).status).toBe(200);
  });

  it('a user who may push but not delete cancels an upload session; one who may only pull cannot', async () => {
    const started = await call(reg.url, 'POST', '/v2/ci/cancel/blobs/uploads/', { headers: as(USERS.ci) });
    expect(started.status).toBe(202);
    const session = started.headers.get('location')!;
    expectError(await call(reg.url, 'DELETE', session, { headers: as(USERS.reader) }), 403, 'DENIED');
    expect((await call(reg.url, 'GET', session, { headers: as(USERS.ci) })).status).toBe(204);
    expect((await call(reg.url, 'DELETE', session, { headers: as(USERS.ci) })).status).toBe(204);
    expectError(await call(reg.url, 'GET', session, { headers: as(USERS.ci) }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('admins delete (group from the user table or from auth.groups)', async () => {
    const a = await pushAs(reg.url, 'team/del', 'a', as(USERS.alice));
    const b = await pushAs(reg.url, 'team/del', 'b', as(USERS.bob));
    expect([...a.statuses, ...b.statuses]).toEqual([201, 201, 201, 201, 201, 201]);
    expect((await call(reg.url, 'DELETE', `/v2/team/del/manifests/${a.digest}`, { headers: as(USERS.alice) })).status).toBe(202);
    expect((await call(reg.url, 'DELETE', `/v2/team/del/manifests/${b.digest}`, { headers: as(USERS.bob) })).status).toBe(202);
    expectError(await get(`/v2/team/del/manifests/${a.digest}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('_catalog asks anonymous callers to log in and lists only repositories the caller may pull', async () => {
    const anonymous = await get('/v2/_catalog');
    expectError(anonymous, 401, 'UNAUTHORIZED');
    expect(anonymous.headers.get('www-authenticate')).toBe(CHALLENGE);
    const names = async (headers: Record<string, string>) =>
      ((await get('/v2/_catalog', headers)).json() as { repositories: string[] }).repositories;
    const ci = await names(as(USERS.ci));
    expect(ci).toContain('team/app');
    expect(ci).toContain('ci/app');
    expect(ci).not.toContain('secret/x');
    const reader = await names(as(USERS.reader));
    expect(reader).toContain('internal/app');
    expect(reader).not.toContain('secret/x');
    expect(await names(as(USERS.alice))).toContain('secret/x');

    // Pages count visible repositories only, and the Link follows on from the last one shown.
    const first = await get('/v2/_catalog?n=1', as(USERS.reader));
    expect(first.json()).toEqual({ repositories: [reader[0]] });
    const link = first.headers.get('link')!;
    const next = /<([^>]+)>/.exec(link)![1]!;
    expect((await get(next, as(USERS.reader))).json().repositories).toEqual([reader[1]]);
    expectError(await get('/v2/_catalog', { authorization: basic('reader', 'bad') }), 401, 'UNAUTHORIZED');
  });

  it('a cross-repository mount from a repository the caller cannot read is not honoured', async () => {
    const { secret, team, internal } = seeded.images;
    const mount = (from: string | undefined, digest: string) =>
      call(reg.url, 'POST', `/v2/ci/app/blobs/uploads/?mount=${digest}${from ? `&from=${from}` : ''}`, { headers: as(USERS.ci) });

    const refused = await mount('secret/x', layerOf(secret));
    expect(refused.status).toBe(202); // an ordinary upload session instead
    expect(refused.headers.get('location')).toMatch(/^\/v2\/ci\/app\/blobs\/uploads\//);
    expect((await call(reg.url, 'HEAD', `/v2/ci/app/blobs/${layerOf(secret)}`, { headers: as(USERS.ci) })).status).toBe(404);
    // Nor automatically, without `from`.
    expect((await mount(undefined, layerOf(secret))).status).toBe(202);
    expect((await call(reg.url, 'HEAD', `/v2/ci/app/blobs/${layerOf(secret)}`, { headers: as(USERS.ci) })).status).toBe(404);

    // Readable sources mount, with and without `from`.
    expect((await mount('internal/app', layerOf(internal))).status).toBe(201);
    expect((await mount(undefined, layerOf(team))).status).toBe(201);
    expect((await call(reg.url, 'HEAD', `/v2/ci/app/blobs/${layerOf(team)}`, { headers: as(USERS.ci) })).status).toBe(200);
    // An admin may mount from secret/x.
    const admin = await call(reg.url, 'POST', `/v2/team/app/blobs/uploads/?mount=${layerOf(secret)}&from=secret/x`, {
      headers: as(USERS.alice),
    });
    expect(admin.status).toBe(201);
  });

  it('user changes apply at once: a new password, removal', async () => {
    const index = new MetadataIndex(join(seeded.dataDir, 'index.db'), { durable: false });
    try {
      const users = new UserTable(index.database);
      expect(users.add('temp', await hashPassword('first'), [])).toBe(true);
      expect((await get('/v2/', { authorization: basic('temp', 'first') })).status).toBe(200);
      users.setPassword('temp', await hashPassword('second'));
      expectError(await get('/v2/', { authorization: basic('temp', 'first') }), 401, 'UNAUTHORIZED');
      expect((await get('/v2/', { authorization: basic('temp', 'second') })).status).toBe(200);
      users.remove('temp');
      expectError(await get('/v2/', { authorization: basic('temp', 'second') }), 401, 'UNAUTHORIZED');
    } finally {
      index.close();
    }
  });

  it('a brute-force loop is throttled (429, Retry-After) and never locks out other accounts or addresses', async () => {
    const limited = await startRegistry(
      { auth: { mode: 'basic', maxLoginFailures: 5, loginFailureWindow: '1m', ...LAN_AUTH } },
      { users: [USERS.alice, USERS.bob, USERS.reader] },
    );
    try {
      await bruteForce(`${limited.url}/v2/`);
    } finally {
      await limited.close();
    }
  });
});

async function bruteForce(url: string) {
  {
    const attacker = '127.0.0.2';
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await requestFrom(attacker, url, { authorization: basic('bob', `guess-${i}`) });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      // A legitimate user of another account, from another address, is served every time.
      expect((await requestFrom('127.0.0.3', url, as(USERS.alice))).status).toBe(200);
    }
    expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(429)]);
    // The right password no longer helps from the attacker's address, nor for the attacked account.
    expect((await requestFrom(attacker, url, as(USERS.bob))).status).toBe(429);
    expect((await requestFrom('127.0.0.4', url, as(USERS.bob))).status).toBe(429);
    expect((await requestFrom(attacker, url, as(USERS.reader))).status).toBe(429);
    // Other accounts from other addresses are untouched.
    expect((await requestFrom('127.0.0.4', url, as(USERS.reader))).status).toBe(200);
    // Spraying many user names from one address is limited by the address.
    const spray: number[] = [];
    for (let i = 0; i < 7; i++) spray.push((await requestFrom('127.0.0.5', url, { authorization: basic(`user${i}`, 'x') })).status);
    expect(spray).toEqual([...Array(5).fill(401), 429, 429]);
  }
}

describe('mode basic with an htpasswd file', () => {
  let reg: TestRegistry;
  let file: string;

  beforeAll(async () => {
    reg = await startRegistry({ auth: { mode: 'basic' } });
    await reg.close();
    file = join(reg.dataDir, '..', `htpasswd-${sha256(reg.dataDir).slice(7, 15)}`);
    const hash = hashSync('s3cret', 5).replace(/^\$2b\$/, '$2y$'); // as `htpasswd -B` writes it
    await writeFile(file, `dave:${hash}\n`);
    reg = await startRegistry({
      auth: {
        mode: 'basic',
        htpasswd: file,
        groups: { writers: ['dave', 'erin'] },
        rules: [{ repositories: 'x/**', groups: ['writers'], actions: ['pull', 'push'] }],
      },
    });
  });
  afterAll(async () => {
    await reg?.close();
    await rm(file, { force: true });
  });

  it('authenticates against the file, with groups from auth.groups, and follows edits', async () => {
    expect((await pushAs(reg.url, 'x/app', '1', { authorization: basic('dave', 's3cret') })).statuses).toEqual([201, 201, 201]);
    expectError(await call(reg.url, 'GET', '/v2/', { headers: { authorization: basic('erin', 'pw') } }), 401, 'UNAUTHORIZED');
    const erin = hashSync('pw', 5);
    await writeFile(file, `dave:${hashSync('s3cret', 5)}\nerin:${erin}\n`);
    await new Promise((r) => setTimeout(r, 1100)); // the file is looked at once a second
    expect((await call(reg.url, 'GET', '/v2/x/app/tags/list', { headers: { authorization: basic('erin', 'pw') } })).status).toBe(200);
  });
});
