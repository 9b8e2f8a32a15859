/**
 * Every query parameter of every route, repeated and of every wrong type: the answer is
 * never a 500, a parameter Berth reads given twice is a 400 naming it, and every refusal
 * has the registry's error body. Anonymous callers get the same treatment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, pushBlob, pushImage, randomBlob, sha256, uniq, type Res } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';

const HUGE = 'a'.repeat(6000);
const FUZZ_BODY = Buffer.from('fuzz');
const FUZZ_BODY_DIGEST = sha256(FUZZ_BODY);
const HUGE_NUMBER = '9'.repeat(400);
const UNICODE = encodeURIComponent('日本/é\u{1F600}');

/** A route, the values it needs to be valid, and how it answers a request with `params`. */
interface Route {
  name: string;
  method: string;
  path: () => string;
  /** Parameters the request needs besides the one under test. */
  base?: () => [string, string][];
  body?: () => Buffer;
  /** Status of the request with only its base parameters. */
  ok: number;
  registry: 'open' | 'token';
}

let open: TestRegistry;
let token: TestRegistry;
const repo = uniq('fuzz/app');
let layer: string;
let manifestDigest: string;
let uploadId = '';
const admin = { authorization: basic('root', 'rootpass') };

const ROUTES: Record<string, Route> = {
  base: { name: 'GET /v2/', method: 'GET', path: () => '/v2/', ok: 200, registry: 'open' },
  catalog: { name: 'GET /v2/_catalog', method: 'GET', path: () => '/v2/_catalog', ok: 200, registry: 'open' },
  tags: { name: 'GET tags/list', method: 'GET', path: () => `/v2/${repo}/tags/list`, ok: 200, registry: 'open' },
  manifest: { name: 'GET manifest', method: 'GET', path: () => `/v2/${repo}/manifests/v1`, ok: 200, registry: 'open' },
  blob: { name: 'HEAD blob', method: 'HEAD', path: () => `/v2/${repo}/blobs/${layer}`, ok: 200, registry: 'open' },
  referrers: { name: 'GET referrers', method: 'GET', path: () => `/v2/${repo}/referrers/${manifestDigest}`, ok: 200, registry: 'open' },
  startUpload: { name: 'POST uploads', method: 'POST', path: () => `/v2/${repo}/blobs/uploads/`, ok: 202, registry: 'open' },
  monolithic: {
    name: 'POST uploads?digest',
    method: 'POST',
    path: () => `/v2/${repo}/blobs/uploads/`,
    base: () => [['digest', FUZZ_BODY_DIGEST]],
    ok: 201,
    registry: 'open',
  },
  mount: {
    name: 'POST uploads?mount&from',
    method: 'POST',
    path: () => `/v2/${uniq('fuzz/other')}/blobs/uploads/`,
    base: () => [
      ['mount', layer],
      ['from', repo],
    ],
    ok: 201,
    registry: 'open',
  },
  finishUpload: {
    name: 'PUT upload?digest',
    method: 'PUT',
    path: () => `/v2/${repo}/blobs/uploads/${uploadId}`,
    base: () => [['digest', FUZZ_BODY_DIGEST]],
    ok: 201,
    registry: 'open',
  },
  uploadStatus: { name: 'GET upload', method: 'GET', path: () => `/v2/${repo}/blobs/uploads/${uploadId}`, ok: 204, registry: 'open' },
  usage: { name: 'GET admin usage', method: 'GET', path: () => '/_berth/admin/usage', ok: 200, registry: 'open' },
  gc: { name: 'POST admin gc', method: 'POST', path: () => '/_berth/admin/gc', base: () => [['dryRun', 'true']], ok: 200, registry: 'open' },
  removeRepo: {
    name: 'DELETE admin repository',
    method: 'DELETE',
    path: () => `/_berth/admin/repositories/${repo}`,
    base: () => [['dryRun', 'true']],
    ok: 200,
    registry: 'open',
  },
  readOnly: { name: 'GET admin read-only', method: 'GET', path: () => '/_berth/admin/read-only', ok: 200, registry: 'open' },
  healthz: { name: 'GET /healthz', method: 'GET', path: () => '/healthz', ok: 200, registry: 'open' },
  readyz: { name: 'GET /readyz', method: 'GET', path: () => '/readyz', ok: 200, registry: 'open' },
  metrics: { name: 'GET /metrics', method: 'GET', path: () => '/metrics', ok: 200, registry: 'open' },
  token: { name: 'GET /token', method: 'GET', path: () => '/token', base: () => [['service', 'berth']], ok: 200, registry: 'token' },
  // Anonymous callers may pull there: a repository the token-mode registry does not hold.
  tokenTags: { name: 'GET tags/list (token mode, anonymous)', method: 'GET', path: () => `/v2/${repo}/tags/list`, ok: 404, registry: 'token' },
};

async function send(route: Route, params: [string, string][], headers: Record<string, string> = {}): Promise<Res> {
  const reg = route.registry === 'open' ? open : token;
  // Each request that finishes an upload needs a fresh session.
  if (route.name === ROUTES.finishUpload!.name || route.name === ROUTES.uploadStatus!.name) uploadId = await newSession();
  const query = [...(route.base?.() ?? []), ...params].map(([k, v]) => `${k}=${v}`).join('&');
  const body = route.name === ROUTES.monolithic!.name || route.name === ROUTES.finishUpload!.name ? FUZZ_BODY : undefined;
  return call(reg.url, route.method, `${route.path()}${query ? `?${query}` : ''}`, { headers, ...(body && { body }) });
}

async function newSession(): Promise<string> {
  const res = await call(open.url, 'POST', `/v2/${repo}/blobs/uploads/`);
  expect(res.status).toBe(202);
  return res.headers.get('docker-upload-uuid')!;
}

/** Whatever the answer, it is not a crash, and a refusal carries the error body. */
function expectHandled(res: Res, label: string): void {
  expect(res.status, `${label}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status >= 400 && res.body.length > 0) {
    const body = res.json();
    expect(body.errors?.[0]?.code, label).toMatch(/^[A-Z_]+$/);
    expect(typeof body.errors[0].message, label).toBe('string');
  }
}

const FUZZ_DIGEST = 'sha256:' + 'ab'.repeat(32);

beforeAll(async () => {
  open = await startRegistry();
  token = await startRegistry(
    { auth: { mode: 'token', rules: [{ repositories: '**', users: ['*'], actions: ['pull'] }] } },
    { users: [{ name: 'root', password: 'rootpass' }] },
  );
  const image = await pushImage(open.url, repo, 'v1');
  layer = image.json.layers[0].digest;
  manifestDigest = image.digest;
  await pushBlob(open.url, repo, randomBlob(10));
});
afterAll(async () => {
  await open?.close();
  await token?.close();
});

/** [route, parameter, the OCI code a repetition gets]. */
const READ_PARAMETERS: [keyof typeof ROUTES, string, string][] = [
  ['catalog', 'n', 'PAGINATION_NUMBER_INVALID'],
  ['catalog', 'last', 'UNSUPPORTED'],
  ['tags', 'n', 'PAGINATION_NUMBER_INVALID'],
  ['tags', 'last', 'UNSUPPORTED'],
  ['monolithic', 'digest', 'DIGEST_INVALID'],
  ['mount', 'mount', 'DIGEST_INVALID'],
  ['mount', 'from', 'NAME_INVALID'],
  ['finishUpload', 'digest', 'DIGEST_INVALID'],
  ['referrers', 'artifactType', 'UNSUPPORTED'],
  ['manifest', 'ns', 'UNSUPPORTED'],
  ['usage', 'repository', 'NAME_INVALID'],
  ['gc', 'dryRun', 'UNSUPPORTED'],
  ['removeRepo', 'dryRun', 'UNSUPPORTED'],
  ['token', 'service', 'UNSUPPORTED'],
];

describe('a parameter given twice is refused with 400, anonymous callers included', () => {
  it.each(READ_PARAMETERS)('%s: %s twice -> 400 %s', async (routeName, parameter, code) => {
    const route = ROUTES[routeName]!;
    const base = route.base?.() ?? [];
    const value =
      base.find(([k]) => k === parameter)?.[1] ??
      (parameter === 'n' ? '1' : parameter === 'repository' ? repo : 'x');
    const withoutIt = { ...route, base: () => base.filter(([k]) => k !== parameter) };
    for (const values of [
      [value, value],
      [value, 'other'],
      [value, ''],
    ]) {
      const res = await send(withoutIt, values.map((v) => [parameter, v]));
      expect(res.status, `${route.name} ${parameter}=${values.join('&')}: ${res.text}`).toBe(400);
      const error = res.json().errors[0];
      expect(error.code).toBe(code);
      expect(error.message).toContain(`"${parameter}"`);
      expect(error.message).toContain('more than once');
    }
  });

  it('the reported crash: _catalog and tags/list with last twice, anonymously', async () => {
    for (const reg of [open, token]) {
      for (const path of ['/v2/_catalog?last=a&last=b', `/v2/${repo}/tags/list?last=a&last=b`]) {
        const res = await call(reg.url, 'GET', path);
        // Token mode challenges the anonymous caller first; either way no 500.
        expect([400, 401]).toContain(res.status);
        expectHandled(res, path);
      }
    }
    const res = await call(open.url, 'GET', '/v2/_catalog?last=a&last=b');
    expect(res.json().errors[0].code).toBe('UNSUPPORTED');
  });

  it('the OAuth2 form of POST /token refuses its fields twice too', async () => {
    for (const field of ['grant_type', 'username', 'password', 'service']) {
      const form = new URLSearchParams([
        ['grant_type', 'password'],
        ['username', 'root'],
        ['password', 'rootpass'],
        ['service', 'berth'],
        [field, 'again'],
      ]);
      const res = await call(token.url, 'POST', '/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      expect(res.status, res.text).toBe(400);
      expect(res.json().errors[0].message).toBe(`form field "${field}" is given more than once; give it once`);
    }
  });

  it('scope may be repeated on /token (docker asks for several)', async () => {
    const res = await send(ROUTES.token!, [
      ['scope', `repository:${repo}:pull`],
      ['scope', 'repository:other:pull'],
    ]);
    expect(res.status).toBe(200);
  });
});

describe('page size n', () => {
  it.each([
    ['abc', 'abc'],
    ['-1', '-1'],
    ['1.5', '1.5'],
    ['1e3', '1e3'],
    ['0x10', '0x10'],
    ['+5', '%2B5'],
    ['" 5"', '%205'],
    ['unicode', UNICODE],
    ['a fullwidth digit', '%EF%BC%95'],
    ['6000 letters', HUGE],
  ])('n=%s -> 400 PAGINATION_NUMBER_INVALID on the catalog and tags', async (_label, n) => {
    {
      for (const route of [ROUTES.catalog!, ROUTES.tags!]) {
        const res = await send(route, [['n', n]]);
        expect(res.status, `${route.name} n=${n.slice(0, 20)}: ${res.text}`).toBe(400);
        expect(res.json().errors[0].code).toBe('PAGINATION_NUMBER_INVALID');
      }
    }
  });

  it.each([
    ['empty', '', 200],
    ['0', '0', 200],
    ['1', '1', 200],
    ['400 nines (capped)', HUGE_NUMBER, 200],
  ])('n=%s -> %i', async (_label, n, status) => {
    for (const route of [ROUTES.catalog!, ROUTES.tags!]) {
      const res = await send(route, [['n', n]]);
      expect(res.status, res.text).toBe(status);
    }
  });
});

describe('every parameter of every route, of every type', () => {
  const VALUES = ['', HUGE, UNICODE, '%zz', '%00', '-1', 'abc', FUZZ_DIGEST, `${FUZZ_DIGEST}x`, '..%2F..%2Fetc'];
  const PARAMETERS = ['n', 'last', 'digest', 'mount', 'from', 'ns', 'artifactType', 'repository', 'dryRun', 'service', 'scope', 'account'];
  const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'n[]', 'last[0]', 'a[b]', '', '%zz'];

  it.each(Object.keys(ROUTES))('%s: no value, repetition or key crashes it', async (routeName) => {
    const route = ROUTES[routeName as keyof typeof ROUTES]!;
    for (const parameter of [...PARAMETERS, ...ODD_KEYS]) {
      for (const value of VALUES) {
        expectHandled(await send(route, [[parameter, value]]), `${route.name} ${parameter}=${value.slice(0, 20)}`);
      }
      // Repeated, with the values that stress a parser most.
      for (const value of ['', HUGE, UNICODE]) {
        expectHandled(await send(route, [[parameter, value], [parameter, value], [parameter, 'x']]), `${route.name} ${parameter}=${value.slice(0, 20)} (x3)`);
      }
    }
    // With admin credentials in token mode too.
    if (route.registry === 'token') expectHandled(await send(route, [['n', 'x'], ['n', 'y']], admin), route.name);
    // And the route still works.
    const ok = await send(route, []);
    expect(ok.status, `${route.name}: ${ok.text}`).toBe(route.ok);
  });
});
