import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  EMPTY_BLOB,
  MT,
  call,
  descriptor,
  expectApiVersion,
  expectError,
  pushBlob,
  pushImage,
  pushManifest,
  randomBlob,
  sha256,
  uniq,
  type Pushed,
  type Res,
} from '../helpers/oci.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

const SBOM = 'application/vnd.example.sbom.v1+json';
const SIG_CONFIG = 'application/vnd.example.signature.config.v1+json';
const ATTEST = 'application/vnd.example.attestation.v1';
const emptyDesc = { mediaType: MT.ociEmpty, digest: sha256(EMPTY_BLOB), size: 2 };

function expectIndex(res: Res): any[] {
  expect(res.status, res.text).toBe(200);
  expectApiVersion(res);
  expect(res.headers.get('content-type')).toBe(MT.ociIndex);
  const body = res.json();
  expect(body.schemaVersion).toBe(2);
  expect(body.mediaType).toBe(MT.ociIndex);
  expect(Array.isArray(body.manifests)).toBe(true);
  return body.manifests;
}

const byDigest = (xs: any[]) => [...xs].sort((a, b) => (a.digest < b.digest ? -1 : 1));

describe('referrers', () => {
  const repo = uniq('ref');
  let subject: Pushed;
  let sbom: Pushed; // artifactType set, empty config, annotations
  let sig: Pushed; // no artifactType: falls back to config.mediaType
  let attestIndex: Pushed; // an index with a subject and artifactType
  let unrelated: Pushed; // refers to another subject

  beforeAll(async () => {
    subject = await pushImage(reg.url, repo, 'v1');
    const other = await pushImage(reg.url, repo, 'v2');
    await pushBlob(reg.url, repo, EMPTY_BLOB);
    const subj = (p: Pushed) => ({ mediaType: p.mediaType, digest: p.digest, size: p.bytes.length });

    const sbomLayer = Buffer.from(`{"sbom":"${uniq()}"}`);
    await pushBlob(reg.url, repo, sbomLayer);
    sbom = await pushManifest(
      reg.url,
      repo,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: SBOM,
        config: emptyDesc,
        layers: [descriptor(SBOM, sbomLayer)],
        subject: subj(subject),
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'org.example.kind': 'sbom' },
      },
      MT.ociManifest,
    );

    const sigConfig = Buffer.from(`{"sig":"${uniq()}"}`);
    const sigLayer = randomBlob(32);
    await pushBlob(reg.url, repo, sigConfig);
    await pushBlob(reg.url, repo, sigLayer);
    sig = await pushManifest(
      reg.url,
      repo,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: descriptor(SIG_CONFIG, sigConfig),
        layers: [descriptor('application/vnd.example.signature', sigLayer)],
        subject: subj(subject),
      },
      MT.ociManifest,
    );

    const child = await pushImage(reg.url, repo);
    attestIndex = await pushManifest(
      reg.url,
      repo,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        artifactType: ATTEST,
        manifests: [{ mediaType: MT.ociManifest, digest: child.digest, size: child.bytes.length }],
        subject: subj(subject),
      },
      MT.ociIndex,
    );

    unrelated = await pushManifest(
      reg.url,
      repo,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: SBOM,
        config: emptyDesc,
        layers: [emptyDesc],
        subject: subj(other),
      },
      MT.ociManifest,
    );
  });

  it('lists every manifest whose subject is the digest, as descriptors', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/referrers/${subject.digest}`);
    const manifests = expectIndex(res);
    expect(res.headers.get('oci-filters-applied')).toBeNull();
    const expected = [
      {
        mediaType: MT.ociManifest,
        digest: sbom.digest,
        size: sbom.bytes.length,
        artifactType: SBOM,
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'org.example.kind': 'sbom' },
      },
      { mediaType: MT.ociManifest, digest: sig.digest, size: sig.bytes.length, artifactType: SIG_CONFIG },
      { mediaType: MT.ociIndex, digest: attestIndex.digest, size: attestIndex.bytes.length, artifactType: ATTEST },
    ];
    const received = byDigest(manifests);
    expect(received.map((m) => m.digest)).toEqual(byDigest(expected).map((m) => m.digest));
    for (const want of byDigest(expected)) {
      const got = received.find((m) => m.digest === want.digest);
      // annotations are optional on descriptors without them; everything else must be exact
      expect(got).toEqual(want.annotations ? want : { ...want, ...(got?.annotations ? { annotations: got.annotations } : {}) });
    }
    expect(manifests.map((m) => m.digest)).not.toContain(unrelated.digest);
  });

  it('artifactType filter -> only matching, with OCI-Filters-Applied: artifactType', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=${encodeURIComponent(SBOM)}`);
    const manifests = expectIndex(res);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(manifests.map((m) => m.digest)).toEqual([sbom.digest]);
    expect(manifests[0].artifactType).toBe(SBOM);
  });

  it('filter on a config.mediaType-derived artifactType matches', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=${encodeURIComponent(SIG_CONFIG)}`);
    const manifests = expectIndex(res);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(manifests.map((m) => m.digest)).toEqual([sig.digest]);
  });

  it('filter with no match -> empty list, header still set', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=application/vnd.none`);
    expect(expectIndex(res)).toEqual([]);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
  });

  it('unknown digest -> 200 with an empty list', async () => {
    const res = await call(reg.url, 'GET', `/v2/${repo}/referrers/${sha256(randomBlob(9))}`);
    expect(expectIndex(res)).toEqual([]);
  });

  it('unknown repository -> 200 with an empty list', async () => {
    const res = await call(reg.url, 'GET', `/v2/${uniq('ghost')}/referrers/${subject.digest}`);
    expect(expectIndex(res)).toEqual([]);
  });

  it('referrers are per repository', async () => {
    const other = uniq('ref2');
    await pushImage(reg.url, other, 'x');
    const res = await call(reg.url, 'GET', `/v2/${other}/referrers/${subject.digest}`);
    expect(expectIndex(res)).toEqual([]);
  });

  it('malformed digest -> 400 DIGEST_INVALID; invalid name -> 400 NAME_INVALID', async () => {
    expectError(await call(reg.url, 'GET', `/v2/${repo}/referrers/sha256:abc`), 400, 'DIGEST_INVALID');
    expectError(await call(reg.url, 'GET', `/v2/${repo}/referrers/latest`), 400, 'DIGEST_INVALID');
    expectError(await call(reg.url, 'GET', `/v2/UPPER/referrers/${subject.digest}`), 400, 'NAME_INVALID');
  });

  it('a referrer pushed before its subject is listed', async () => {
    const r = uniq('early');
    await pushBlob(reg.url, r, EMPTY_BLOB);
    const futureSubject = await (async () => {
      // build the subject manifest but do not push it yet
      const cfg = Buffer.from(`{"os":"linux","n":"${uniq()}"}`);
      await pushBlob(reg.url, r, cfg);
      const m = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, cfg), layers: [] as unknown[] };
      const bytes = Buffer.from(JSON.stringify(m));
      return { m, bytes, digest: sha256(bytes) };
    })();
    const ref = await pushManifest(
      reg.url,
      r,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: SBOM,
        config: emptyDesc,
        layers: [emptyDesc],
        subject: { mediaType: MT.ociManifest, digest: futureSubject.digest, size: futureSubject.bytes.length },
      },
      MT.ociManifest,
    );
    const res = await call(reg.url, 'GET', `/v2/${r}/referrers/${futureSubject.digest}`);
    expect(expectIndex(res).map((m) => m.digest)).toEqual([ref.digest]);
  });

  it('deleting a referrer removes it from the list', async () => {
    const r = uniq('delref');
    const s = await pushImage(reg.url, r, 's');
    await pushBlob(reg.url, r, EMPTY_BLOB);
    const a = await pushManifest(
      reg.url,
      r,
      undefined,
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: SBOM,
        config: emptyDesc,
        layers: [emptyDesc],
        subject: { mediaType: MT.ociManifest, digest: s.digest, size: s.bytes.length },
      },
      MT.ociManifest,
    );
    expect(expectIndex(await call(reg.url, 'GET', `/v2/${r}/referrers/${s.digest}`)).map((m) => m.digest)).toEqual([a.digest]);
    expect((await call(reg.url, 'DELETE', `/v2/${r}/manifests/${a.digest}`)).status).toBe(202);
    expect(expectIndex(await call(reg.url, 'GET', `/v2/${r}/referrers/${s.digest}`))).toEqual([]);
  });
});
