/**
 * `docker search REGISTRY/TERM` with the real docker CLI and engine (20.10) against Berth
 * in each authentication mode: the engine asks GET /v1/search, sending the credentials of
 * `docker login`; results hold only repositories the caller may pull.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAN_AUTH, USERS, as } from '../auth/lan.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { MT, call, descriptor, gzipLayer, sha256 } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/** Pushes a one-layer image whose config labels carry `description`. */
async function pushDescribed(reg: TestRegistry, repo: string, description: string, headers: Record<string, string>) {
  const layer = gzipLayer(500);
  const config = Buffer.from(
    JSON.stringify({
      os: 'linux',
      architecture: 'amd64',
      config: { Labels: { 'org.opencontainers.image.description': description } },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }),
  );
  for (const blob of [layer.bytes, config]) {
    const res = await call(reg.url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { headers, body: blob });
    expect(res.status, res.text).toBe(201);
  }
  const manifest = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: [descriptor(MT.ociLayer, layer.bytes)] };
  const put = await call(reg.url, 'PUT', `/v2/${repo}/manifests/1.0`, {
    headers: { ...headers, 'content-type': MT.ociManifest },
    body: JSON.stringify(manifest),
  });
  expect(put.status, put.text).toBe(201);
}

describe('docker search against Berth', () => {
  let dockerd: Dockerd;
  const registries: TestRegistry[] = [];

  beforeAll(async () => {
    const none = await startRegistry();
    const basicMode = await startRegistry({ auth: { mode: 'basic', ...LAN_AUTH } }, { users: Object.values(USERS) });
    const token = await startRegistry({ auth: { mode: 'token', ...LAN_AUTH } }, { users: Object.values(USERS) });
    registries.push(none, basicMode, token);
    for (const reg of registries) {
      const admin = reg === none ? {} : as(USERS.alice);
      await pushDescribed(reg, 'team/searchapp', 'The team app', admin);
      await pushDescribed(reg, 'internal/searchapp', 'For staff', admin);
      await pushDescribed(reg, 'secret/searchapp', 'Admins only', admin);
      await pushDescribed(reg, 'team/other', 'Not an app', admin);
    }
    dockerd = await startDockerd({ insecureRegistries: registries.map((r) => r.host) });
  });
  afterAll(async () => {
    try {
      await dockerd?.stop();
    } finally {
      for (const reg of registries) await reg.close();
    }
  });

  /** `docker search` rows as [name, description]. */
  async function search(reg: TestRegistry, term: string, extra: string[] = []): Promise<string[][]> {
    const res = await dockerd.dockerOk(['search', '--no-trunc', '--format', '{{.Name}}\t{{.Description}}', ...extra, `${reg.host}/${term}`]);
    return res.stdout
      .trim()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.split('\t'));
  }

  it('auth mode none: every matching repository, with its description; --limit', async () => {
    const [none] = registries;
    expect(await search(none!, 'searchapp')).toEqual([
      ['internal/searchapp', 'For staff'],
      ['secret/searchapp', 'Admins only'],
      ['team/searchapp', 'The team app'],
    ]);
    expect(await search(none!, 'SEARCH', ['--limit', '1'])).toEqual([['internal/searchapp', 'For staff']]);
    expect(await search(none!, 'nothing-matches')).toEqual([]);
  });

  for (const mode of ['basic', 'token'] as const) {
    it(`auth mode ${mode}: anonymous, then after docker login, only what the user may pull`, async () => {
      const reg = registries[mode === 'basic' ? 1 : 2]!;
      const names = async () => (await search(reg, 'searchapp')).map(([name]) => name);
      expect(await names()).toEqual(['team/searchapp']);
      const login = await dockerd.docker(['login', '-u', USERS.reader.name, '--password-stdin', reg.host], { input: `${USERS.reader.password}\n` });
      expect(login.stdout, login.stderr).toContain('Login Succeeded');
      expect(await names()).toEqual(['internal/searchapp', 'team/searchapp']);
      await dockerd.dockerOk(['login', '-u', USERS.alice.name, '--password-stdin', reg.host], { input: `${USERS.alice.password}\n` });
      expect(await names()).toEqual(['internal/searchapp', 'secret/searchapp', 'team/searchapp']);
      await dockerd.dockerOk(['logout', reg.host]);
    });
  }
});
