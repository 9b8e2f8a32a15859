import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';

describe('operations configuration', () => {
  it('takes webhook endpoints as JSON from the environment, with filter defaults', () => {
    const config = parseConfig(undefined, {
      BERTH_NOTIFICATIONS_ENDPOINTS: '[{"name":"ci","url":"https://ci.lan/hook","secret":"s","events":["push"]}]',
      BERTH_NOTIFICATIONS_RETRY_BACKOFF: '5s',
      BERTH_LIMITS_MAX_CONCURRENT_UPLOADS: '8',
      BERTH_STORAGE_READ_ONLY: 'true',
      BERTH_METRICS_ADDR: '127.0.0.1:9090',
    });
    expect(config.notifications.endpoints).toEqual([
      { name: 'ci', url: 'https://ci.lan/hook', secret: 's', events: ['push'], repositories: ['**'], timeout: 10_000, format: 'berth', headers: {} },
    ]);
    expect(config.notifications.retryBackoff).toBe(5000);
    expect(config.limits.maxConcurrentUploads).toBe(8);
    expect(config.storage.readOnly).toBe(true);
    expect(config.metrics.addr).toBe('127.0.0.1:9090');
  });

  it('refuses half a TLS key pair, duplicate endpoint names, unknown events and bad metrics addresses', () => {
    expect(() => parseConfig('http:\n  tlsCert: /etc/berth/server.crt\n')).toThrow(/http\.tlsKey: tlsCert and tlsKey go together/);
    expect(() =>
      parseConfig('notifications:\n  endpoints:\n    - {name: a, url: "http://x/1"}\n    - {name: a, url: "http://x/2"}\n'),
    ).toThrow(/endpoint names must be unique/);
    expect(() => parseConfig('notifications:\n  endpoints:\n    - {name: a, url: "http://x/1", events: [tag]}\n')).toThrow(
      /notifications\.endpoints\.0\.events\.0/,
    );
    expect(() => parseConfig('metrics:\n  addr: nope\n')).toThrow(/metrics\.addr/);
  });
});
