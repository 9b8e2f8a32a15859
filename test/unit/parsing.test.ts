import { describe, expect, it } from 'vitest';
import { tryParseDigest, parseDigest } from '../../src/digest.js';
import { RegistryError } from '../../src/errors.js';
import { isValidTag, validateRepositoryName } from '../../src/names.js';
import { parseRange } from '../../src/routes/blobs.js';
import { parseApiPath } from '../../src/routes/path.js';

describe('API paths', () => {
  it.each([
    ['/v2/', { kind: 'base' }],
    ['/v2', { kind: 'base' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/a/b/c/tags/list', { kind: 'tags', name: 'a/b/c' }],
    ['/v2/team/app/manifests/1.2', { kind: 'manifest', name: 'team/app', reference: '1.2' }],
    ['/v2/team/app/blobs/uploads/', { kind: 'uploads', name: 'team/app' }],
    ['/v2/team/app/blobs/uploads', { kind: 'uploads', name: 'team/app' }],
    ['/v2/team/app/blobs/uploads/abc', { kind: 'upload', name: 'team/app', id: 'abc' }],
    ['/v2/team/app/blobs/sha256:00', { kind: 'blob', name: 'team/app', digest: 'sha256:00' }],
    ['/v2/team/app/referrers/sha256:00', { kind: 'referrers', name: 'team/app', digest: 'sha256:00' }],
    // Names may contain the API's own words as components: the last occurrence wins.
    ['/v2/blobs/manifests/manifests/x', { kind: 'manifest', name: 'blobs/manifests', reference: 'x' }],
    ['/v2/a/%2e%2e/b/tags/list', { kind: 'tags', name: 'a/../b' }],
    ['/v2/team/app/other', { kind: 'unknown' }],
    ['/v2/%zz/tags/list', { kind: 'unknown' }],
  ])('%s', (path, expected) => {
    expect(parseApiPath(path)).toEqual(expected);
  });
});

describe('repository names and tags', () => {
  it.each(['a', 'team/app', 'a/b/c/d', 'my-app', 'my__app', 'a.b', 'x0-9', 'a---b'])('accepts %s', (name) => {
    expect(validateRepositoryName(name)).toBe(name);
  });
  it.each(['', 'A', 'a/../b', '..', 'a//b', '/a', 'a/', 'a_-b', '-a', 'a.', 'a b', 'a%2fb', 'x'.repeat(256)])('refuses %j', (name) => {
    expect(() => validateRepositoryName(name)).toThrow(RegistryError);
    try {
      validateRepositoryName(name);
    } catch (err) {
      expect((err as RegistryError).code).toBe('NAME_INVALID');
    }
  });
  it('accepts exactly 255 characters', () => {
    expect(validateRepositoryName(`${'a'.repeat(127)}/${'b'.repeat(127)}`)).toHaveLength(255);
  });
  it('tags', () => {
    expect(isValidTag('latest')).toBe(true);
    expect(isValidTag('_v1.2-rc_3')).toBe(true);
    expect(isValidTag('t'.repeat(128))).toBe(true);
    expect(isValidTag('t'.repeat(129))).toBe(false);
    expect(isValidTag('.hidden')).toBe(false);
    expect(isValidTag('-x')).toBe(false);
    expect(isValidTag('a/b')).toBe(false);
  });
});

describe('digests', () => {
  it('accepts sha256 and sha512', () => {
    expect(tryParseDigest(`sha256:${'a'.repeat(64)}`)?.algorithm).toBe('sha256');
    expect(tryParseDigest(`sha512:${'0'.repeat(128)}`)?.algorithm).toBe('sha512');
  });
  it.each([
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    `constructor:${'a'.repeat(64)}`,
    'sha256',
    '',
  ])('refuses %j', (value) => {
    expect(tryParseDigest(value)).toBeUndefined();
    expect(() => parseDigest(value)).toThrow(/digest/);
  });
});

describe('blob ranges', () => {
  it.each([
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=-500', 100, { start: 0, end: 99 }],
    ['bytes=50-500', 100, { start: 50, end: 99 }],
    ['bytes=100-', 100, 'unsatisfiable'],
    ['bytes=5-3', 100, undefined], // invalid: ignored
    ['bytes=150-120', 100, undefined], // invalid before unsatisfiable
    ['bytes=-0', 100, 'unsatisfiable'],
    ['bytes=0-1,5-6', 100, undefined],
    ['items=0-1', 100, undefined],
    ['bytes=-', 100, undefined],
  ] as const)('%s of %d bytes', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});
