/** The web UI's pure parts: page paths (repository names hold slashes; images are named as docker names them) and number formats. */
import { describe, expect, it } from 'vitest';
import { ago, formatBytes, percent, shortDigest } from '../../web/src/format.js';
import { parseRoute, paths } from '../../web/src/router.js';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('web UI paths', () => {
  it('round-trips every page, whatever the depth of the repository name', () => {
    for (const name of ['app', 'team/app', 'a/b/c/d', 'manifests/tags/x', 'x.y_z-w/v']) {
      expect(parseRoute(paths.repository(name))).toEqual({ page: 'repository', name });
      expect(parseRoute(paths.image(name, '1.0'))).toEqual({ page: 'image', name, reference: '1.0' });
      expect(parseRoute(paths.image(name, 'latest'))).toEqual({ page: 'image', name, reference: 'latest' });
      expect(parseRoute(paths.image(name, digest))).toEqual({ page: 'image', name, reference: digest });
    }
    expect(paths.image('team/app', digest)).toBe(`/repositories/team/app@${digest}`);
    expect(paths.image('team/app', 'v1')).toBe('/repositories/team/app:v1');
    expect(parseRoute(paths.layer(digest))).toEqual({ page: 'layer', digest });
    expect(parseRoute('/')).toEqual({ page: 'repositories' });
    expect(parseRoute('/repositories/')).toEqual({ page: 'repositories' });
    expect(parseRoute('/storage')).toEqual({ page: 'storage' });
    expect(parseRoute('/sign-in')).toEqual({ page: 'sign-in' });
    expect(parseRoute('/v2/team/app/tags/list')).toEqual({ page: 'not-found' });
    expect(parseRoute('/layers/')).toEqual({ page: 'not-found' });
  });
});

describe('web UI formats', () => {
  it('prints sizes in SI units as docker does', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1000)).toBe('1.00 kB');
    expect(formatBytes(33_822)).toBe('33.8 kB');
    expect(formatBytes(1_084_101)).toBe('1.08 MB');
    expect(formatBytes(512_000_000)).toBe('512 MB');
    expect(formatBytes(3.2e12)).toBe('3.20 TB');
    expect(formatBytes(null)).toBe('—');
  });

  it('says how long ago, and shortens digests like docker image IDs', () => {
    const now = Date.parse('2026-06-10T12:00:00Z');
    expect(ago('2026-06-10T11:59:30Z', now)).toBe('just now');
    expect(ago('2026-06-10T11:58:00Z', now)).toBe('2 minutes ago');
    expect(ago('2026-06-10T11:00:00Z', now)).toBe('1 hour ago');
    expect(ago('2026-06-07T12:00:00Z', now)).toBe('3 days ago');
    expect(ago('2025-06-01T12:00:00Z', now)).toBe('1 year ago');
    expect(ago(null, now)).toBe('—');
    expect(shortDigest(digest)).toBe('sha256:abababababab');
    expect(percent(1, 4)).toBe('25.0%');
    expect(percent(0, 0)).toBe('0%');
  });
});
