// Port of opencontainers/distribution-spec conformance/03_discovery_test.go (test03ContentDiscovery).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TestRegistry } from '../helpers/registry.js';
import {
  startConformanceRegistry,
  type Client,
  type IndexDoc,
  type Request,
  artifactTypeFilter,
  configs,
  contentDiscovery,
  deleteManifestBeforeBlobs,
  dummyDigest,
  emptyJSONBlob,
  emptyJSONDescriptor,
  envTagList,
  expect2xx,
  expectStatus,
  expectStatusAny,
  getTagList,
  layerBlobContentLength,
  layerBlobData,
  layerBlobDigest,
  manifests,
  refsIndexArtifactContent,
  refsIndexArtifactDigest,
  refsManifestAConfigArtifactContent,
  refsManifestAConfigArtifactDigest,
  refsManifestALayerArtifactContent,
  refsManifestALayerArtifactDigest,
  refsManifestBConfigArtifactContent,
  refsManifestBConfigArtifactDigest,
  refsManifestBLayerArtifactContent,
  refsManifestBLayerArtifactDigest,
  refsManifestCLayerArtifactContent,
  refsManifestCLayerArtifactDigest,
  runContentDiscoverySetup,
  runOnlyIf,
  runOnlyIfNot,
  skipIfDisabled,
  suiteDescription,
  testAnnotationKey,
  testAnnotationValues,
  testRefArtifactTypeA,
  testRefBlobA,
  testRefBlobADigest,
  testRefBlobALength,
  testRefBlobB,
  testRefBlobBDigest,
  testRefBlobBLength,
  testTagName,
  titleContentDiscovery,
  warn,
} from './setup.js';

let reg: TestRegistry;
let client: Client;
beforeAll(async () => {
  ({ reg, client } = await startConformanceRegistry());
});
afterAll(async () => {
  await reg.close();
});

const config2 = configs[2]!;
const config4 = configs[4]!;
const manifest2 = manifests[2]!;
const manifest3 = manifests[3]!;
const manifest4 = manifests[4]!;

/** json.Unmarshal(resp.Body(), &index) with Expect(err).To(BeNil()) */
function parseIndex(body: Buffer): IndexDoc {
  return JSON.parse(body.toString('utf8')) as IndexDoc;
}

function indexManifests(index: IndexDoc): NonNullable<IndexDoc['manifests']> {
  return index.manifests ?? [];
}

function annotationCount(a: Record<string, string> | null | undefined): number {
  return a ? Object.keys(a).length : 0;
}

describe(suiteDescription, () => {
  describe(titleContentDiscovery, () => {
    let numTags = 4;
    let tagList: string[] = [];

    describe('Setup', () => {
      test('Populate registry with test blob', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', config2.digest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', config2.contentLength)
          .setBody(config2.content);
        resp = await client.do(req);
        expect2xx(resp);
      });

      test('Populate registry with test layer', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', layerBlobDigest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', layerBlobContentLength)
          .setBody(layerBlobData);
        resp = await client.do(req);
        expect2xx(resp);
      });

      test('Populate registry with test tags', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);
        for (let i = 0; i < numTags; i++) {
          const tag = `test${i}`;
          tagList.push(tag);
          const req = client
            .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: tag })
            .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
            .setBody(manifest2.content);
          const resp = await client.do(req);
          expect2xx(resp);
        }
        const req = client.newRequest('GET', '/v2/<name>/tags/list');
        const resp = await client.do(req);
        tagList = getTagList(resp);
      });

      test('Populate registry with test tags (no push)', (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIfNot(ctx, runContentDiscoverySetup);
        tagList = envTagList.split(',');
      });

      test('References setup', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);

        // Populate registry with empty JSON blob
        // validate expected empty JSON blob digest
        expect(emptyJSONDescriptor.digest).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', emptyJSONDescriptor.digest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', String(emptyJSONDescriptor.size))
          .setBody(emptyJSONBlob);
        resp = await client.do(req);
        expect2xx(resp);

        // Populate registry with reference blob before the image manifest is pushed
        req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', testRefBlobADigest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', testRefBlobALength)
          .setBody(testRefBlobA);
        resp = await client.do(req);
        expect2xx(resp);

        // Populate registry with test references manifest (config.MediaType = artifactType)
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: refsManifestAConfigArtifactDigest })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(refsManifestAConfigArtifactContent);
        resp = await client.do(req);
        expect2xx(resp);
        expect(resp.header('OCI-Subject'), resp.describe()).toBe(manifest4.digest);

        // Populate registry with test references manifest (ArtifactType, config.MediaType = emptyJSON)
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: refsManifestALayerArtifactDigest })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(refsManifestALayerArtifactContent);
        resp = await client.do(req);
        expect2xx(resp);
        expect(resp.header('OCI-Subject'), resp.describe()).toBe(manifest4.digest);

        // Populate registry with test index manifest
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: refsIndexArtifactDigest })
          .setHeader('Content-Type', 'application/vnd.oci.image.index.v1+json')
          .setBody(refsIndexArtifactContent);
        resp = await client.do(req);
        expect2xx(resp);
        expect(resp.header('OCI-Subject'), resp.describe()).toBe(manifest4.digest);

        // Populate registry with test blob
        req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', config4.digest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', config4.contentLength)
          .setBody(config4.content);
        resp = await client.do(req);
        expect2xx(resp);

        // Populate registry with test layer
        req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', layerBlobDigest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', layerBlobContentLength)
          .setBody(layerBlobData);
        resp = await client.do(req);
        expect2xx(resp);

        // Populate registry with test manifest
        const tag = testTagName;
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: tag })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(manifest4.content);
        resp = await client.do(req);
        expect2xx(resp);

        // Populate registry with reference blob after the image manifest is pushed
        req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', testRefBlobBDigest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', testRefBlobBLength)
          .setBody(testRefBlobB);
        resp = await client.do(req);
        expect2xx(resp);

        // Populate registry with test references manifest (config.MediaType = artifactType)
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: refsManifestBConfigArtifactDigest })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(refsManifestBConfigArtifactContent);
        resp = await client.do(req);
        expect2xx(resp);
        expect(resp.header('OCI-Subject'), resp.describe()).toBe(manifest4.digest);

        // Populate registry with test references manifest (ArtifactType, config.MediaType = emptyJSON)
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: refsManifestBLayerArtifactDigest })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(refsManifestBLayerArtifactContent);
        resp = await client.do(req);
        expect2xx(resp);
        expect(resp.header('OCI-Subject'), resp.describe()).toBe(manifest4.digest);

        // Populate registry with test references manifest to a non-existent subject
        req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: refsManifestCLayerArtifactDigest })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(refsManifestCLayerArtifactContent);
        resp = await client.do(req);
        expect2xx(resp);
        expect(resp.header('OCI-Subject'), resp.describe()).toBe(manifest3.digest);
      });
    });

    describe('Test content discovery endpoints (listing tags)', () => {
      test('GET request to list tags should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const req = client.newRequest('GET', '/v2/<name>/tags/list');
        const resp = await client.do(req);
        expectStatus(resp, 200);
        tagList = getTagList(resp);
        numTags = tagList.length;
      });

      test('GET number of tags should be limitable by `n` query parameter', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const numResults = Math.trunc(numTags / 2);
        const req = client.newRequest('GET', '/v2/<name>/tags/list').setQueryParam('n', String(numResults));
        const resp = await client.do(req);
        expectStatus(resp, 200);
        tagList = getTagList(resp);
        expect(tagList.length, resp.describe()).toBe(numResults);
      });

      test('GET start of tag is set by `last` query parameter', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const numResults = Math.trunc(numTags / 2);
        let req = client.newRequest('GET', '/v2/<name>/tags/list').setQueryParam('n', String(numResults));
        let resp = await client.do(req);
        tagList = getTagList(resp);
        // Go indexes tagList[numResults-1] directly (a panic, i.e. a failure, if it is short).
        expect(tagList.length, resp.describe()).toBeGreaterThanOrEqual(numResults);
        const last = tagList[numResults - 1]!;
        req = client
          .newRequest('GET', '/v2/<name>/tags/list')
          .setQueryParam('n', String(numResults))
          .setQueryParam('last', last);
        resp = await client.do(req);
        expectStatus(resp, 200);
        // As in the Go suite, the assertions below apply to the first page (tagList is not
        // re-read from the second response).
        expect(tagList.length).toBeLessThanOrEqual(numResults);
        expect(tagList).toContain(tagList[numResults - 1]);
      });
    });

    describe('Test content discovery endpoints (listing references)', () => {
      test('GET request to nonexistent blob should result in empty 200 response', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const req = client.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: dummyDigest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
        expect(resp.header('Content-Type')).toBe('application/vnd.oci.image.index.v1+json');

        const index = parseIndex(resp.body);
        expect(indexManifests(index).length).toBe(0);
      });

      test('GET request to existing blob should yield 200', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const req = client.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: manifest4.digest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
        expect(resp.header('Content-Type')).toBe('application/vnd.oci.image.index.v1+json');

        const index = parseIndex(resp.body);
        const ms = indexManifests(index);
        expect(ms.length, resp.describe()).toBe(5);
        expect(ms[0]!.digest).not.toBe(ms[1]!.digest);
        for (const m of ms) {
          expect(annotationCount(m.annotations), JSON.stringify(m)).toBe(1);
          expect(m.annotations?.[testAnnotationKey] ?? '').toBe(testAnnotationValues[m.digest] ?? '');
        }
      });

      test('GET request to existing blob with filter should yield 200', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const req = client
          .newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: manifest4.digest })
          .setQueryParam('artifactType', testRefArtifactTypeA);
        const resp = await client.do(req);
        expectStatus(resp, 200);
        expect(resp.header('Content-Type')).toBe('application/vnd.oci.image.index.v1+json');

        const index = parseIndex(resp.body);
        const ms = indexManifests(index);

        // also check resp header "OCI-Filters-Applied: artifactType" denoting that an artifactType filter was applied
        if (resp.header('OCI-Filters-Applied') !== '') {
          expect(ms.length, resp.describe()).toBe(2);
          expect(resp.header('OCI-Filters-Applied')).toBe(artifactTypeFilter);
          for (const m of ms) {
            expect(annotationCount(m.annotations), JSON.stringify(m)).toBe(1);
            expect(m.annotations?.[testAnnotationKey] ?? '').toBe(testAnnotationValues[m.digest] ?? '');
          }
        } else {
          expect(ms.length, resp.describe()).toBe(5);
          for (const m of ms) {
            expect(annotationCount(m.annotations), JSON.stringify(m)).toBe(1);
            expect(m.annotations?.[testAnnotationKey] ?? '').toBe(testAnnotationValues[m.digest] ?? '');
          }
          warn('filtering by artifact-type is not implemented');
        }
      });

      test('GET request to missing manifest should yield 200', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        const req = client.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: manifest3.digest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
        expect(resp.header('Content-Type')).toBe('application/vnd.oci.image.index.v1+json');

        const index = parseIndex(resp.body);
        const ms = indexManifests(index);
        expect(ms.length, resp.describe()).toBe(1);
        expect(ms[0]!.digest).toBe(refsManifestCLayerArtifactDigest);
      });
    });

    describe('Teardown', () => {
      const references = (): string[] => [
        refsIndexArtifactDigest,
        manifest2.digest,
        manifest4.digest,
        refsManifestAConfigArtifactDigest,
        refsManifestALayerArtifactDigest,
        testTagName,
        refsManifestBConfigArtifactDigest,
        refsManifestBLayerArtifactDigest,
        refsManifestCLayerArtifactDigest,
      ];

      if (deleteManifestBeforeBlobs) {
        test('Delete created manifest & associated tags', async (ctx) => {
          skipIfDisabled(ctx, contentDiscovery);
          runOnlyIf(ctx, runContentDiscoverySetup);
          for (const ref of references()) {
            const req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: ref });
            const resp = await client.do(req);
            expectStatusAny(resp, [405, 404], true);
          }
        });
      }

      test('Delete config blob created in tests', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: config2.digest });
        const resp = await client.do(req);
        expectStatusAny(resp, [405], true);
      });

      test('Delete layer blob created in setup', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: layerBlobDigest });
        const resp = await client.do(req);
        expectStatusAny(resp, [405], true);
      });

      if (!deleteManifestBeforeBlobs) {
        test('Delete created manifest & associated tags', async (ctx) => {
          skipIfDisabled(ctx, contentDiscovery);
          runOnlyIf(ctx, runContentDiscoverySetup);
          for (const ref of references()) {
            const req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: ref });
            const resp = await client.do(req);
            expectStatusAny(resp, [405, 404], true);
          }
        });
      }

      test('References teardown', async (ctx) => {
        skipIfDisabled(ctx, contentDiscovery);
        runOnlyIf(ctx, runContentDiscoverySetup);

        const deleteReq = async (req: Request): Promise<void> => {
          const resp = await client.do(req);
          expectStatusAny(resp, [405, 404], true);
        };

        if (deleteManifestBeforeBlobs) {
          await deleteReq(client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsIndexArtifactDigest }));
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestAConfigArtifactDigest }),
          );
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestALayerArtifactDigest }),
          );
          await deleteReq(client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest4.digest }));
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestBConfigArtifactDigest }),
          );
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestBLayerArtifactDigest }),
          );
        }

        // Delete config blob created in setup
        await deleteReq(client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: config4.digest }));

        // Delete reference blob created in setup
        await deleteReq(client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: testRefBlobADigest }));
        await deleteReq(client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: testRefBlobBDigest }));

        // Delete empty JSON blob created in setup
        await deleteReq(client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: emptyJSONDescriptor.digest }));

        if (!deleteManifestBeforeBlobs) {
          // Delete manifest created in setup
          await deleteReq(client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsIndexArtifactDigest }));
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestAConfigArtifactDigest }),
          );
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestALayerArtifactDigest }),
          );
          await deleteReq(client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest4.digest }));
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestBConfigArtifactDigest }),
          );
          await deleteReq(
            client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: refsManifestBLayerArtifactDigest }),
          );
        }
      });
    });
  });
});
