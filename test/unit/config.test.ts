import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, makeConfig, parseConfig } from '../../src/config.js';

describe('configuration', () => {
  it('config/default.yaml documents exactly the built-in defaults', async () => {
    const fromFile = parseConfig(await readFile('config/default.yaml', 'utf8'));
    expect(fromFile).toEqual(makeConfig());
    expect(fromFile.http.addr).toBe('0.0.0.0:5000');
    expect(fromFile.storage.root).toBe(resolve('data'));
    expect(fromFile.uploads.idleTimeout).toBe(24 * 3600 * 1000);
  });

  it('environment variables override the file, with types', () => {
    const config = parseConfig('http:\n  addr: 0.0.0.0:6000\nstorage:\n  root: /srv/a\n', {
      BERTH_HTTP_ADDR: '127.0.0.1:5055',
      BERTH_STORAGE_ROOT: '/srv/b',
      BERTH_STORAGE_FSYNC: 'false',
      BERTH_UPLOADS_IDLE_TIMEOUT: '90m',
      BERTH_MANIFESTS_MAX_BYTES: '1024',
    });
    expect(config.http.addr).toBe('127.0.0.1:5055');
    expect(config.storage.root).toBe('/srv/b');
    expect(config.storage.fsync).toBe(false);
    expect(config.uploads.idleTimeout).toBe(90 * 60 * 1000);
    expect(config.manifests.maxBytes).toBe(1024);
  });

  it('reads a value from a *_FILE variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-config-'));
    try {
      await writeFile(join(dir, 'root'), '/srv/from-file\n');
      const config = loadConfig(undefined, { BERTH_STORAGE_ROOT_FILE: join(dir, 'root') });
      expect(config.storage.root).toBe('/srv/from-file');
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('rejects unknown keys, bad addresses and bad durations with every problem listed', () => {
    const attempt = () => parseConfig('http:\n  addr: nope\n  port: 1\nuploads:\n  idleTimeout: soon\n');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/http\.addr: expected HOST:PORT/);
    expect(attempt).toThrow(/Unrecognized key: "port"/);
    expect(attempt).toThrow(/uploads\.idleTimeout: invalid duration "soon"/);
  });

  it('rejects YAML that is not a mapping', () => {
    expect(() => parseConfig('- a\n- b\n')).toThrow(/expected a mapping/);
    expect(() => parseConfig('http: [\n')).toThrow(ConfigError);
  });

  it('is frozen', () => {
    const config = makeConfig();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.storage)).toBe(true);
  });
});

describe('configuration from registry:2 habits and the environment', () => {
  it('accepts :PORT for every interface, and refuses ports beyond 65535', () => {
    // registry:2 configurations write it unquoted.
    const fromRegistry2 = parseConfig('http:\n  addr: :5000\nmetrics:\n  addr: :9090\n');
    expect([fromRegistry2.http.addr, fromRegistry2.metrics.addr]).toEqual([':5000', ':9090']);
    expect(parseConfig(undefined, { BERTH_METRICS_ADDR: ':9090' }).metrics.addr).toBe(':9090');
    expect(parseConfig(undefined, { BERTH_HTTP_ADDR: '[::]:5000' }).http.addr).toBe('[::]:5000');
    expect(() => parseConfig('http:\n  addr: 0.0.0.0:65536\n', {}, 'berth.yaml')).toThrow(/^berth\.yaml: http\.addr: the port must be between 0 and 65535$/);
  });

  it('names the variable of a bad value from the environment, and the file and key of one from the file', () => {
    const attempt = () => parseConfig('uploads:\n  idleTimeout: soon\n', { BERTH_HTTP_ADDR: 'nope', BERTH_AUTH_RULES: '[{"repositories":"**","users":["a"],"actions":["fly"]}]' }, 'berth.yaml');
    expect(attempt).toThrow(ConfigError);
    let message = '';
    try {
      attempt();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n').sort()).toEqual([
      'BERTH_AUTH_RULES (at 0.actions.0): Invalid option: expected one of "pull"|"push"|"delete"',
      'BERTH_HTTP_ADDR: expected HOST:PORT, e.g. 0.0.0.0:5000 or :5000',
      'berth.yaml: uploads.idleTimeout: invalid duration "soon" (use e.g. 30s, 10m, 24h)',
    ]);
    expect(() => loadConfig(undefined, { BERTH_STORAGE_ROOT_FILE: '/nonexistent/root' })).toThrow(
      /^BERTH_STORAGE_ROOT_FILE: cannot read \/nonexistent\/root \(ENOENT\)$/,
    );
  });

  it('refuses unknown BERTH_ variables, except those the configuration names', () => {
    expect(() => parseConfig(undefined, { BERTH_STORAGE_ROT: '/srv' })).toThrow(/BERTH_STORAGE_ROT is not a Berth setting \(did you mean BERTH_STORAGE_ROOT\?\)/);
    expect(() => parseConfig(undefined, { BERTH_HTTP_ADR_FILE: '/x' })).toThrow(/did you mean BERTH_HTTP_ADDR_FILE\?/);
    const config = parseConfig(undefined, {
      BERTH_CONFIG: '/etc/berth/berth.yaml',
      BERTH_HUB_TOKEN: 'secret',
      BERTH_PROXY_UPSTREAMS: '[{"name":"docker.io","url":"https://registry-1.docker.io","username":"me","passwordEnv":"BERTH_HUB_TOKEN"}]',
      OTHER_VARIABLE: 'ignored',
    });
    expect(config.proxy.upstreams[0]!.password).toBe('secret');
  });
});
