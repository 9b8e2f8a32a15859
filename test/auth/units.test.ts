import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashSync } from '@node-rs/bcrypt';
import { describe, expect, it } from 'vitest';
import { AccessRules, type Identity } from '../../src/auth/rules.js';
import { globToRegExp } from '../../src/glob.js';
import { ruleFor } from '../../src/gc/retention.js';
import { covers, formatScopes, parseScopes } from '../../src/auth/scope.js';
import { LoginThrottle } from '../../src/auth/throttle.js';
import { hashPassword, HtpasswdUsers, isBcryptHash, parseHtpasswd, validateUserName } from '../../src/auth/users.js';
import { parseAuthorization, PasswordVerifier } from '../../src/auth/credentials.js';
import { requiredAccess } from '../../src/auth/access.js';
import { ConfigError, parseConfig } from '../../src/config.js';
import { RegistryError } from '../../src/errors.js';

const anonymous: Identity = { kind: 'anonymous' };
const user = (name: string, ...groups: string[]): Identity => ({ kind: 'user', name, groups });

describe('repository globs', () => {
  it('* stays within a component, ** crosses them, ? is one character', () => {
    expect(globToRegExp('team/*').test('team/app')).toBe(true);
    expect(globToRegExp('team/*').test('team/a/b')).toBe(false);
    expect(globToRegExp('ci/**').test('ci/a/b')).toBe(true);
    expect(globToRegExp('ci/**').test('ci')).toBe(false);
    expect(globToRegExp('**').test('x/y/z')).toBe(true);
    expect(globToRegExp('app?').test('app1')).toBe(true);
    expect(globToRegExp('app?').test('app/')).toBe(false);
    // Regex metacharacters are literal.
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });

  it('a ** component matches zero or more components, as in every glob dialect', () => {
    const glob = globToRegExp('a/**/b');
    expect(['a/b', 'a/x/b', 'a/x/y/b'].map((name) => glob.test(name))).toEqual([true, true, true]);
    expect(['a/xb', 'ab', 'a/b/c', 'x/a/b'].map((name) => glob.test(name))).toEqual([false, false, false, false]);
    const leading = globToRegExp('**/app');
    expect(['app', 'team/app', 'a/b/app'].map((name) => leading.test(name))).toEqual([true, true, true]);
    expect(['myapp', 'team/myapp'].map((name) => leading.test(name))).toEqual([false, false]);
    expect(globToRegExp('a/**/**/b').test('a/b')).toBe(true);
    // ** inside a component still crosses components, but needs the rest of that component.
    expect(globToRegExp('team/x**').test('team/x/y')).toBe(true);
    expect(globToRegExp('team/x**').test('team')).toBe(false);
  });

  it('access rules and retention rules both match a/b with a/**/b', () => {
    const rules = new AccessRules([{ repositories: ['a/**/b'], users: ['*'], groups: [], actions: ['pull'] }]);
    expect(rules.allows(anonymous, 'a/b', 'pull')).toBe(true);
    expect(rules.allows(anonymous, 'a/c/b', 'pull')).toBe(true);
    expect(ruleFor([{ repositories: 'a/**/b', keepLast: 1 }], 'a/b')).toBeDefined();
  });
});

describe('access rules', () => {
  const rules = new AccessRules([
    { repositories: ['**'], users: [], groups: ['admins'], actions: ['pull', 'push', 'delete'] },
    { repositories: ['ci/**'], users: ['ci'], groups: [], actions: ['pull', 'push'] },
    { repositories: ['internal/**'], users: ['authenticated'], groups: [], actions: ['pull'] },
    { repositories: ['internal/**', 'secret/*'], users: ['*'], groups: [], actions: [] },
    { repositories: ['**'], users: ['*'], groups: [], actions: ['pull'] },
  ]);
  const actions = (who: Identity, repo: string) => [...rules.actions(who, repo)].sort();

  it('the first rule matching repository and principal decides', () => {
    expect(actions(user('alice', 'admins'), 'secret/x')).toEqual(['delete', 'pull', 'push']);
    expect(actions(user('ci'), 'ci/app')).toEqual(['pull', 'push']);
    expect(actions(user('ci'), 'ci/a/b')).toEqual(['pull', 'push']);
    expect(actions(user('ci'), 'team/app')).toEqual(['pull']);
    expect(actions(user('reader'), 'internal/app')).toEqual(['pull']);
    expect(actions(anonymous, 'internal/app')).toEqual([]); // an empty rule denies
    expect(actions(anonymous, 'team/app')).toEqual(['pull']);
    expect(actions(user('ci'), 'secret/x')).toEqual([]);
  });

  it('anonymous matches only callers without credentials; authenticated only users', () => {
    const r = new AccessRules([
      { repositories: ['a'], users: ['anonymous'], groups: [], actions: ['pull'] },
      { repositories: ['b'], users: ['authenticated'], groups: [], actions: ['pull'] },
    ]);
    expect(r.allows(anonymous, 'a', 'pull')).toBe(true);
    expect(r.allows(user('x'), 'a', 'pull')).toBe(false);
    expect(r.allows(anonymous, 'b', 'pull')).toBe(false);
    expect(r.allows(user('x'), 'b', 'pull')).toBe(true);
  });

  it('no rules: nothing is allowed', () => {
    expect(new AccessRules([]).allows(user('root', 'admins'), 'x', 'pull')).toBe(false);
  });
});

describe('scopes', () => {
  it('parses several scopes, space separated or repeated, with resource classes and host:port names', () => {
    const parsed = parseScopes(['repository:team/app:pull,push repository(plugin):p:pull', 'registry:catalog:*', 'repository:reg.lan:5000/x:pull', 'junk']);
    expect(parsed).toEqual([
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'p', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'reg.lan:5000/x', actions: ['pull'] },
    ]);
    expect(formatScopes(parsed.slice(0, 1))).toBe('repository:team/app:pull,push');
    expect(covers(parsed, 'repository', 'team/app', 'push')).toBe(true);
    expect(covers(parsed, 'repository', 'team/app', 'delete')).toBe(false);
    expect(covers(parsed, 'registry', 'catalog', '*')).toBe(true);
  });
});

describe('required access', () => {
  it('GET/HEAD pull, POST/PUT/PATCH pull+push, DELETE delete, a mount source separately', () => {
    const manifest = { kind: 'manifest', name: 'a/b', reference: 'x' } as const;
    expect(requiredAccess('HEAD', manifest, undefined).repositories).toEqual([{ name: 'a/b', actions: ['pull'] }]);
    expect(requiredAccess('PUT', manifest, undefined).repositories).toEqual([{ name: 'a/b', actions: ['pull', 'push'] }]);
    expect(requiredAccess('DELETE', manifest, undefined).repositories).toEqual([{ name: 'a/b', actions: ['delete'] }]);
    // Cancelling an upload session deletes nothing stored: what uploading needs.
    expect(requiredAccess('DELETE', { kind: 'upload', name: 'a/b', id: 'x' }, undefined).repositories).toEqual([
      { name: 'a/b', actions: ['pull', 'push'] },
    ]);
    const mount = requiredAccess('POST', { kind: 'uploads', name: 'a/b' }, 'c/d');
    expect(mount.repositories).toEqual([{ name: 'a/b', actions: ['pull', 'push'] }]);
    expect(mount.mountFrom).toBe('c/d');
    expect(requiredAccess('GET', { kind: 'catalog' }, undefined)).toEqual({ repositories: [], catalog: true });
  });
});

describe('failed-login throttle', () => {
  it('locks an address and a user after maxFailures within the window, with Retry-After, then forgets', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) throttle.reserve('10.0.0.1', 'bob')(true);
    let error: RegistryError | undefined;
    try {
      throttle.check('10.0.0.1', 'carol');
    } catch (err) {
      error = err as RegistryError;
    }
    expect(error?.status).toBe(429);
    expect(error?.code).toBe('TOOMANYREQUESTS');
    expect(error?.headers['Retry-After']).toBe('60');
    expect(() => throttle.check('10.0.0.2', 'bob')).toThrow(RegistryError); // the user, from anywhere
    expect(() => throttle.check('10.0.0.2', 'carol')).not.toThrow(); // others are untouched
    now += 30_000;
    try {
      throttle.check('10.0.0.1', undefined);
    } catch (err) {
      expect((err as RegistryError).headers['Retry-After']).toBe('30');
    }
    now += 30_001;
    expect(() => throttle.check('10.0.0.1', 'bob')).not.toThrow();
  });

  it('counts attempts in progress: no more than maxFailures are checked at once, and a success gives its place back', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(3, 60_000, () => now);
    const a = throttle.reserve('10.0.0.1', 'bob');
    const b = throttle.reserve('10.0.0.2', 'bob');
    const c = throttle.reserve('10.0.0.3', 'bob');
    // bob has three checks in progress: a fourth is refused, from any address, for a second.
    expect(() => throttle.reserve('10.0.0.4', 'bob')).toThrow(expect.objectContaining({ status: 429, headers: { 'Retry-After': '1' } }));
    const d = throttle.reserve('10.0.0.1', 'carol');
    const e = throttle.reserve('10.0.0.1', 'dave');
    expect(() => throttle.reserve('10.0.0.1', 'erin')).toThrow(RegistryError); // 10.0.0.1 has three too
    // In progress is not locked out (a remembered login passes `check`).
    expect(() => throttle.check('10.0.0.1', 'bob')).not.toThrow();
    a(false);
    a(true); // settling twice changes nothing
    b(true);
    c(true);
    d(false);
    e(true);
    // bob failed twice (b, c), 10.0.0.1 once (e): neither is locked out yet.
    expect(() => throttle.check('10.0.0.5', 'bob')).not.toThrow();
    expect(() => throttle.check('10.0.0.1', 'zoe')).not.toThrow();
    throttle.reserve('10.0.0.5', 'bob')(true);
    expect(() => throttle.check('10.0.0.6', 'bob')).toThrow(RegistryError);
    throttle.reserve('10.0.0.1', 'carol')(true);
    expect(() => throttle.check('10.0.0.1', 'zoe')).not.toThrow();
    throttle.reserve('10.0.0.1', 'carol')(true);
    expect(() => throttle.check('10.0.0.1', 'zoe')).toThrow(RegistryError);
    // A check that outlives its window counts in the next one.
    now += 60_001;
    const late = throttle.reserve('10.0.0.9', 'yann');
    now += 60_001;
    late(true);
    throttle.reserve('10.0.0.9', 'yann')(true);
    expect(() => throttle.check('10.0.0.9', undefined)).not.toThrow();
    throttle.reserve('10.0.0.9', 'yann')(true);
    expect(() => throttle.check('10.0.0.9', undefined)).toThrow(RegistryError);
  });
});

describe('credentials and users', () => {
  it('parses Basic (password may contain colons) and Bearer; anything else is invalid', () => {
    const b = Buffer.from('ci:pa:ss').toString('base64');
    expect(parseAuthorization(`Basic ${b}`)).toEqual({ scheme: 'basic', user: 'ci', password: 'pa:ss' });
    expect(parseAuthorization('bearer abc')).toEqual({ scheme: 'bearer', token: 'abc' });
    expect(parseAuthorization(undefined)).toBeUndefined();
    expect(parseAuthorization(`Basic ${Buffer.from(':').toString('base64')}`)).toBeUndefined();
    expect(parseAuthorization('Digest x')).toEqual({ scheme: 'invalid' });
    expect(parseAuthorization(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toEqual({ scheme: 'invalid' });
  });

  it('user names exclude colons and the reserved principals', () => {
    expect(validateUserName('ci-bot@lan')).toBe('ci-bot@lan');
    expect(() => validateUserName('a:b')).toThrow();
    expect(() => validateUserName('anonymous')).toThrow();
    expect(() => validateUserName('authenticated')).toThrow();
  });

  it('hashes new passwords with bcrypt, refusing more than 72 bytes (counted in UTF-8)', async () => {
    const hash = await hashPassword('a'.repeat(72));
    expect(isBcryptHash(hash)).toBe(true);
    expect(hash.startsWith('$2b$11$')).toBe(true);
    await expect(hashPassword('a'.repeat(73))).rejects.toThrow(/at most 72 bytes/);
    await expect(hashPassword('é'.repeat(37))).rejects.toThrow(/at most 72 bytes/); // 74 bytes in 37 characters
    await expect(hashPassword('')).rejects.toThrow(/must not be empty/);
  });

  it('checks passwords against $2y$, $2a$ and $2b$ hashes (htpasswd -B writes $2y$), as htpasswd does beyond 72 bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-test-htpasswd-'));
    try {
      const file = join(dir, 'htpasswd');
      const long = 'x'.repeat(80);
      const lines = ['2y', '2a', '2b'].map((v) => `u${v}:${hashSync(`pw-${v}`, 4).replace(/^\$2b\$/, `$${v}$`)}`);
      await writeFile(file, `${lines.join('\n')}\nlong:${hashSync(long, 4)}\n`);
      const verifier = new PasswordVerifier(new HtpasswdUsers(file), new LoginThrottle(100, 60_000));
      for (const v of ['2y', '2a', '2b']) {
        expect((await verifier.check(`u${v}`, `pw-${v}`, '10.0.0.1'))?.name).toBe(`u${v}`);
        expect(await verifier.check(`u${v}`, 'wrong', '10.0.0.1')).toBeUndefined();
      }
      // bcrypt reads 72 bytes: what an htpasswd user typed beyond them does not matter.
      expect((await verifier.check('long', 'x'.repeat(72), '10.0.0.1'))?.name).toBe('long');
      expect(await verifier.check('nobody', 'pw', '10.0.0.1')).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs two checks at a time, queues 256 more, and refuses the rest with 503 without counting them as failures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-test-htpasswd-'));
    try {
      const file = join(dir, 'htpasswd');
      await writeFile(file, `bob:${hashSync('right', 4)}\n`);
      const throttle = new LoginThrottle(1000, 60_000);
      const verifier = new PasswordVerifier(new HtpasswdUsers(file), throttle);
      const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => verifier.check('bob', `guess-${i}`, '10.0.0.1')));
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused).toHaveLength(300 - 2 - 256);
      for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
      expect(results.filter((r) => r.status === 'fulfilled' && r.value === undefined)).toHaveLength(258);
      // 258 failures counted, not 300: 742 attempts are left in the window.
      const held = Array.from({ length: 742 }, () => throttle.reserve('10.0.0.1', 'bob'));
      expect(() => throttle.reserve('10.0.0.1', 'bob')).toThrow(RegistryError);
      held.forEach((settle) => settle(false));
      expect((await verifier.check('bob', 'right', '10.0.0.1'))?.name).toBe('bob');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('htpasswd: bcrypt lines only', () => {
    const hash = '$2y$05$' + 'a'.repeat(53);
    expect(parseHtpasswd(`# comment\nalice:${hash}\n\n`)).toEqual([{ name: 'alice', hash }]);
    expect(() => parseHtpasswd('bob:{SHA}abc=')).toThrow(/line 1: expected name:bcrypt-hash/);
  });
});

describe('auth configuration', () => {
  it('accepts the modes, rules (a single glob or a list) and JSON from the environment', () => {
    const config = parseConfig(
      'auth:\n  mode: basic\n  rules:\n    - { repositories: "ci/**", users: [ci], actions: [pull, push] }\n',
      { BERTH_AUTH_ADMIN_GROUPS: '["admins"]', BERTH_AUTH_GROUPS: '{"admins":["alice"]}' },
    );
    expect(config.auth.mode).toBe('basic');
    expect(config.auth.rules).toEqual([{ repositories: ['ci/**'], users: ['ci'], groups: [], actions: ['pull', 'push'] }]);
    expect(config.auth.adminGroups).toEqual(['admins']);
    expect(config.auth.groups).toEqual({ admins: ['alice'] });
    const fromEnv = parseConfig(undefined, { BERTH_AUTH_MODE: 'token', BERTH_AUTH_RULES: '[{"repositories":"**","users":["*"],"actions":["pull"]}]' });
    expect(fromEnv.auth.rules[0]!.repositories).toEqual(['**']);
  });

  it('refuses unknown actions, rules without principals and an external issuer without a realm', () => {
    expect(() => parseConfig('auth:\n  rules:\n    - { repositories: "**", users: [a], actions: [fly] }\n')).toThrow(ConfigError);
    expect(() => parseConfig('auth:\n  rules:\n    - { repositories: "**", actions: [pull] }\n')).toThrow(/needs users or groups/);
    expect(() => parseConfig('auth:\n  mode: token\n  tokenJwks: https://x/jwks\n')).toThrow(/auth\.tokenRealm/);
    expect(() => parseConfig('auth:\n  mode: ldap\n')).toThrow(/auth\.mode/);
  });
});
