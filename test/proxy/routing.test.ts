/** Which names the pull-through cache answers, and the proxy configuration. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, makeConfig, parseConfig } from '../../src/config.js';
import { MirrorRouting } from '../../src/proxy/routing.js';

const upstreams = [
  { name: 'docker.io', url: 'https://registry-1.docker.io' },
  { name: 'ghcr.io', url: 'https://ghcr.io/' },
];

/** The host:port a request was sent to. */
const HOST = 'registry.lan:5000';

describe('mirror routing', () => {
  const routing = new MirrorRouting(makeConfig({ proxy: { upstreams, defaultUpstream: 'docker.io', local: ['team/**', 'ci/*'] } }).proxy);

  it('sends names without an upstream prefix to the default upstream, single names as library/<name>', () => {
    expect(routing.resolve('library/busybox', undefined, HOST)).toEqual({ upstream: 'docker.io', remote: 'library/busybox', cache: 'docker.io/library/busybox' });
    expect(routing.resolve('busybox', undefined, HOST)).toEqual({ upstream: 'docker.io', remote: 'library/busybox', cache: 'docker.io/library/busybox' });
    expect(routing.resolve('org/app', undefined, HOST)?.cache).toBe('docker.io/org/app');
  });

  it('selects the upstream by ?ns= (its name or its URL host) and by path prefix, into the same cache', () => {
    expect(routing.resolve('org/tool', 'ghcr.io', HOST)).toEqual({ upstream: 'ghcr.io', remote: 'org/tool', cache: 'ghcr.io/org/tool' });
    expect(routing.resolve('library/busybox', 'registry-1.docker.io', HOST)?.cache).toBe('docker.io/library/busybox');
    expect(routing.resolve('ghcr.io/org/tool', undefined, HOST)).toEqual({ upstream: 'ghcr.io', remote: 'org/tool', cache: 'ghcr.io/org/tool' });
    expect(routing.resolve('docker.io/library/busybox', undefined, HOST)?.cache).toBe('docker.io/library/busybox');
  });

  it('refuses an ?ns= naming a registry that is neither an upstream nor Berth itself', () => {
    // A pull of quay.io/t/core through a catch-all mirror must not get docker.io's t/core or a local one.
    for (const name of ['t/core', 'team/app', 'library/busybox']) {
      expect(() => routing.resolve(name, 'quay.io', HOST)).toThrow(expect.objectContaining({ code: 'NAME_UNKNOWN', status: 404 }));
    }
    expect(() => routing.resolve('t/core', 'Quay.IO', HOST)).toThrow(/registry "Quay.IO" is not mirrored here/);
    // Repeated (an array from the query parser) names no registry either.
    expect(() => routing.resolve('t/core', ['docker.io', 'quay.io'] as unknown as string, HOST)).toThrow(/not mirrored here/);
  });

  it('an ?ns= naming Berth itself (the host the request was sent to, or http.hostnames) is as if there were none', () => {
    expect(routing.resolve('team/app', HOST, HOST)).toBeUndefined();
    expect(routing.resolve('team/app', 'REGISTRY.lan:5000', HOST)).toBeUndefined();
    expect(routing.resolve('org/app', HOST, HOST)?.cache).toBe('docker.io/org/app');
    expect(routing.resolve('ghcr.io/org/tool', HOST, HOST)?.upstream).toBe('ghcr.io');
    const aliased = new MirrorRouting(makeConfig({ proxy: { upstreams } }).proxy, ['registry.lan:5000', 'berth.example']);
    expect(aliased.resolve('team/app', 'berth.example', '10.1.2.3:5000')).toBeUndefined();
    expect(aliased.resolve('team/app', 'registry.lan:5000', '10.1.2.3:5000')).toBeUndefined();
    expect(() => aliased.resolve('team/app', 'registry.lan', '10.1.2.3:5000')).toThrow(/not mirrored here/);
  });

  it('keeps the local namespaces local', () => {
    expect(routing.resolve('team/app', undefined, HOST)).toBeUndefined();
    expect(routing.resolve('team/a/b', undefined, HOST)).toBeUndefined();
    expect(routing.resolve('ci/app', undefined, HOST)).toBeUndefined();
    expect(routing.resolve('ci/a/b', undefined, HOST)?.upstream).toBe('docker.io');
  });

  it('without a default upstream only ?ns= and prefixes are mirrored', () => {
    const plain = new MirrorRouting(makeConfig({ proxy: { upstreams } }).proxy);
    expect(plain.resolve('library/busybox', undefined, HOST)).toBeUndefined();
    expect(plain.resolve('library/busybox', 'docker.io', HOST)?.cache).toBe('docker.io/library/busybox');
    expect(plain.resolve('ghcr.io/org/tool', undefined, HOST)?.remote).toBe('org/tool');
  });
});

describe('proxy configuration', () => {
  it('reads an upstream password from a file or from the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-proxy-config-'));
    try {
      await writeFile(join(dir, 'pw'), 'from-file\n');
      const config = parseConfig(
        `proxy:\n  upstreams:\n    - { name: a, url: "http://127.0.0.1:1", username: u, passwordFile: ${join(dir, 'pw')} }\n    - { name: b, url: "http://127.0.0.1:2", username: u, passwordEnv: B_PW }\n`,
        { B_PW: 'from-env' },
      );
      expect(config.proxy.upstreams.map((u) => u.password)).toEqual(['from-file', 'from-env']);
      expect(config.proxy.upstreams[0]!.tagTtl).toBe(300_000);
      expect(config.proxy.upstreams[0]!.timeout).toBe(30_000);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('refuses names outside the repository grammar, duplicates and an unknown default upstream', () => {
    const bad = (proxy: string) => expect(() => parseConfig(proxy)).toThrow(ConfigError);
    bad('proxy:\n  upstreams: [{ name: "Docker.IO", url: "https://x" }]\n');
    bad('proxy:\n  upstreams: [{ name: "a", url: "ftp://x" }]\n');
    bad('proxy:\n  upstreams: [{ name: "a", url: "https://x" }, { name: "a", url: "https://y" }]\n');
    bad('proxy:\n  upstreams: [{ name: "a", url: "https://x" }]\n  defaultUpstream: b\n');
  });

  it('serve --check-config does not print upstream passwords or webhook secrets', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-proxy-config-'));
    try {
      const file = join(dir, 'berth.yaml');
      await writeFile(
        file,
        'proxy:\n  upstreams:\n    - { name: a, url: "http://127.0.0.1:1", username: u, passwordEnv: A_PW }\n' +
          'notifications:\n  endpoints:\n    - { name: ci, url: "http://127.0.0.1:1/hook", secret: webhook-key-42 }\n',
      );
      const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url)); // built by `npm test`'s pretest
      const result = spawnSync(process.execPath, [cli, 'serve', '--config', file, '--check-config'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, A_PW: 'hunter2-secret' },
      });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('"password": "(set)"');
      expect(result.stdout).not.toContain('hunter2-secret');
      expect(result.stdout).toContain('"secret": "(set)"');
      expect(result.stdout).not.toContain('webhook-key-42');
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('takes the upstream list from the environment as JSON', () => {
    const config = parseConfig(undefined, { BERTH_PROXY_UPSTREAMS: '[{"name":"docker.io","url":"https://registry-1.docker.io","tagTtl":"1m"}]' });
    expect(config.proxy.upstreams[0]).toMatchObject({ name: 'docker.io', tagTtl: 60_000 });
  });
});
