// Port of opencontainers/distribution-spec conformance/02_push_test.go (test02Push).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TestRegistry } from '../helpers/registry.js';
import {
  startConformanceRegistry,
  type Client,
  type Response,
  automaticCrossmountEnabled,
  chunked,
  configs,
  crossmountNamespace,
  deleteManifestBeforeBlobs,
  dummyDigest,
  emptyLayerManifestContent,
  emptyLayerManifestDigest,
  emptyLayerTestTag,
  expectStatus,
  expectStatusAny,
  layerBlobContentLength,
  layerBlobData,
  layerBlobDigest,
  manifests,
  nonexistentManifest,
  push,
  runAutomaticCrossmountTest,
  runOnlyIf,
  runOnlyIfNot,
  runPushSetup,
  setupChunkedBlob,
  skipIfDisabled,
  suiteDescription,
  testBlobA,
  testBlobADigest,
  testBlobALength,
  titlePush,
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

const config1 = configs[1]!;
const manifest1 = manifests[1]!;

describe(suiteDescription, () => {
  describe(titlePush, () => {
    let lastResponse: Response | undefined;
    let prevResponse: Response | undefined;
    let emptyLayerManifestRef = '';

    // g.Context("Setup"): "No setup required at this time for push tests". The Go context
    // holds no spec; vitest fails an empty describe, so it is not declared here.

    describe('Blob Upload Streamed', () => {
      test('PATCH request with blob in body should yield 202 response', async (ctx) => {
        skipIfDisabled(ctx, push);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');

        req = client
          .newRequest('PATCH', resp.getRelativeLocation())
          .setHeader('Content-Type', 'application/octet-stream')
          .setBody(testBlobA);
        resp = await client.do(req);
        expectStatus(resp, 202);
        lastResponse = resp;
      });

      test('PUT request to session URL with digest should yield 201 response', async (ctx) => {
        skipIfDisabled(ctx, push);
        expect(lastResponse).toBeDefined();
        // The Go suite sets Content-Length: <len(testBlobA)> but no body; Go's net/http
        // sends Content-Length: 0 for a body-less PUT, which is what fetch sends too.
        const req = client
          .newRequest('PUT', lastResponse!.getRelativeLocation())
          .setQueryParam('digest', testBlobADigest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', testBlobALength);
        const resp = await client.do(req);
        expectStatus(resp, 201);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');
      });
    });

    describe('Blob Upload Monolithic', () => {
      test('GET nonexistent blob should result in 404 response', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: dummyDigest });
        const resp = await client.do(req);
        expectStatus(resp, 404);
      });

      test('POST request with digest and blob should yield a 201 or 202', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('POST', '/v2/<name>/blobs/uploads/')
          .setHeader('Content-Length', config1.contentLength)
          .setHeader('Content-Type', 'application/octet-stream')
          .setQueryParam('digest', config1.digest)
          .setBody(config1.content);
        const resp = await client.do(req);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');
        expectStatusAny(resp, [201, 202]);
        lastResponse = resp;
      });

      test('GET request to blob URL from prior request should yield 200 or 404 based on response code', async (ctx) => {
        skipIfDisabled(ctx, push);
        expect(lastResponse).toBeDefined();
        const req = client.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: config1.digest });
        const resp = await client.do(req);
        if (lastResponse!.status === 202) {
          expectStatus(resp, 404);
        } else {
          expectStatus(resp, 200);
        }
      });

      test('POST request should yield a session ID', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        const resp = await client.do(req);
        expectStatus(resp, 202);
        lastResponse = resp;
      });

      test('PUT upload of a blob should yield a 201 Response', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('PUT', lastResponse!.getRelativeLocation())
          .setHeader('Content-Length', config1.contentLength)
          .setHeader('Content-Type', 'application/octet-stream')
          .setQueryParam('digest', config1.digest)
          .setBody(config1.content);
        const resp = await client.do(req);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');
        expectStatus(resp, 201);
      });

      test('GET request to existing blob should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: config1.digest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });

      test('PUT upload of a layer blob should yield a 201 Response', async (ctx) => {
        skipIfDisabled(ctx, push);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setHeader('Content-Length', layerBlobContentLength)
          .setHeader('Content-Type', 'application/octet-stream')
          .setQueryParam('digest', layerBlobDigest)
          .setBody(layerBlobData);
        resp = await client.do(req);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');
        expectStatus(resp, 201);
      });

      test('GET request to existing layer should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: layerBlobDigest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });
    });

    describe('Blob Upload Chunked', () => {
      test('Out-of-order blob upload should return 416', async (ctx) => {
        skipIfDisabled(ctx, push);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/').setHeader('Content-Length', '0');
        let resp = await client.do(req);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');

        // rebuild chunked blob if min size is above our chunk size
        const minSizeStr = resp.header('OCI-Chunk-Min-Length');
        if (minSizeStr !== '') {
          expect(minSizeStr).toMatch(/^[+-]?\d+$/); // strconv.Atoi must succeed
          const minSize = Number.parseInt(minSizeStr, 10);
          if (minSize > chunked.testBlobBChunk1.length) {
            setupChunkedBlob(minSize * 2 - 2);
          }
        }

        req = client
          .newRequest('PATCH', resp.getRelativeLocation())
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', chunked.testBlobBChunk2Length)
          .setHeader('Content-Range', chunked.testBlobBChunk2Range)
          .setBody(chunked.testBlobBChunk2);
        resp = await client.do(req);
        expectStatus(resp, 416);
      });

      test('PATCH request with first chunk should return 202', async (ctx) => {
        skipIfDisabled(ctx, push);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/').setHeader('Content-Length', '0');
        let resp = await client.do(req);
        const location = resp.header('Location');
        expect(location, resp.describe()).not.toBe('');
        prevResponse = resp;
        req = client
          .newRequest('PATCH', resp.getRelativeLocation())
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', chunked.testBlobBChunk1Length)
          .setHeader('Content-Range', chunked.testBlobBChunk1Range)
          .setBody(chunked.testBlobBChunk1);
        resp = await client.do(req);
        expectStatus(resp, 202);
        expect(resp.header('Range')).toBe(chunked.testBlobBChunk1Range);
        lastResponse = resp;
      });

      test('Retry previous blob chunk should return 416', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('PATCH', prevResponse!.getRelativeLocation())
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', chunked.testBlobBChunk1Length)
          .setHeader('Content-Range', chunked.testBlobBChunk1Range)
          .setBody(chunked.testBlobBChunk1);
        const resp = await client.do(req);
        expectStatus(resp, 416);
      });

      test('Get on stale blob upload should return 204 with a range and location', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client.newRequest('GET', prevResponse!.getRelativeLocation());
        const resp = await client.do(req);
        expectStatus(resp, 204);
        expect(resp.header('Location')).not.toBe('');
        expect(resp.header('Range')).toBe(chunked.testBlobBChunk1Range);
        lastResponse = resp;
      });

      test('PATCH request with second chunk should return 202', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('PATCH', lastResponse!.getRelativeLocation())
          .setHeader('Content-Length', chunked.testBlobBChunk2Length)
          .setHeader('Content-Range', chunked.testBlobBChunk2Range)
          .setHeader('Content-Type', 'application/octet-stream')
          .setBody(chunked.testBlobBChunk2);
        const resp = await client.do(req);
        const location = resp.header('Location');
        expectStatus(resp, 202);
        expect(location).not.toBe('');
        lastResponse = resp;
      });

      test('PUT request with digest should return 201', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('PUT', lastResponse!.getRelativeLocation())
          .setHeader('Content-Length', '0')
          .setHeader('Content-Type', 'application/octet-stream')
          .setQueryParam('digest', chunked.testBlobBDigest);
        const resp = await client.do(req);
        expectStatus(resp, 201);
        const location = resp.header('Location');
        expect(location).not.toBe('');
      });
    });

    describe('Cross-Repository Blob Mount', () => {
      test('Cross-mounting of a blob without the from argument should yield session id', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmountNamespace })
          .setQueryParam('mount', dummyDigest);
        const resp = await client.do(req);
        expectStatus(resp, 202);
        expect(resp.getAbsoluteLocation()).not.toBe('');
      });

      test("POST request to mount another repository's blob should return 201 or 202", async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmountNamespace })
          .setQueryParam('mount', testBlobADigest)
          .setQueryParam('from', client.defaultName);
        const resp = await client.do(req);
        expectStatusAny(resp, [201, 202]);
        lastResponse = resp;
      });

      test('GET request to test digest within cross-mount namespace should return 200', async (ctx) => {
        skipIfDisabled(ctx, push);
        runOnlyIf(ctx, lastResponse!.status === 201);
        expect(lastResponse!.getRelativeLocation()).toBe(`/v2/${crossmountNamespace}/blobs/${testBlobADigest}`);
        const req = client.newRequest('GET', lastResponse!.getRelativeLocation());
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });

      test('Cross-mounting of nonexistent blob should yield session id', (ctx) => {
        skipIfDisabled(ctx, push);
        runOnlyIf(ctx, lastResponse!.status === 202);
        expect(lastResponse!.getRelativeLocation().startsWith(`/v2/${crossmountNamespace}/blobs/uploads/`)).toBe(true);
      });

      test('Cross-mounting without from, and automatic content discovery enabled should return a 201', async (ctx) => {
        skipIfDisabled(ctx, push);
        runOnlyIf(ctx, runAutomaticCrossmountTest);
        runOnlyIf(ctx, lastResponse!.status === 201);
        runOnlyIf(ctx, automaticCrossmountEnabled);
        const req = client
          .newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmountNamespace })
          .setQueryParam('mount', testBlobADigest);
        const resp = await client.do(req);
        expectStatus(resp, 201);
      });

      test('Cross-mounting without from, and automatic content discovery disabled should return a 202', async (ctx) => {
        skipIfDisabled(ctx, push);
        runOnlyIf(ctx, runAutomaticCrossmountTest);
        runOnlyIf(ctx, lastResponse!.status === 201);
        runOnlyIfNot(ctx, automaticCrossmountEnabled);
        const req = client
          .newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmountNamespace })
          .setQueryParam('mount', testBlobADigest);
        const resp = await client.do(req);
        expectStatus(resp, 202);
      });
    });

    describe('Manifest Upload', () => {
      test('GET nonexistent manifest should return 404', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client.newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: nonexistentManifest });
        const resp = await client.do(req);
        expectStatus(resp, 404);
      });

      test('PUT should accept a manifest upload', async (ctx) => {
        skipIfDisabled(ctx, push);
        for (let i = 0; i < 4; i++) {
          const tag = `test${i}`;
          const req = client
            .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: tag })
            .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
            .setBody(manifest1.content);
          const resp = await client.do(req);
          const location = resp.header('Location');
          expect(location, resp.describe()).not.toBe('');
          expectStatus(resp, 201);
        }
      });

      test('Registry should accept a manifest upload with no layers', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: emptyLayerTestTag })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(emptyLayerManifestContent);
        const resp = await client.do(req);
        if (resp.status === 201) {
          const location = resp.header('Location');
          emptyLayerManifestRef = location;
          expect(location).not.toBe('');
          expectStatus(resp, 201);
        } else {
          warn(`image manifest with no layers is not supported (${resp.describe()})`);
        }
      });

      test('GET request to manifest URL (digest) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, push);
        const req = client
          .newRequest('GET', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });
    });

    describe('Teardown', () => {
      if (deleteManifestBeforeBlobs) {
        test('Delete manifest created in tests', async (ctx) => {
          skipIfDisabled(ctx, push);
          runOnlyIf(ctx, runPushSetup);
          let req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest });
          let resp = await client.do(req);
          expectStatusAny(resp, [405], true);
          if (emptyLayerManifestRef !== '') {
            req = client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: emptyLayerManifestDigest });
            resp = await client.do(req);
            expectStatusAny(resp, [405], true);
          }
        });
      }

      test('Delete config blob created in tests', async (ctx) => {
        skipIfDisabled(ctx, push);
        runOnlyIf(ctx, runPushSetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: config1.digest });
        const resp = await client.do(req);
        expectStatusAny(resp, [404, 405], true);
      });

      test('Delete layer blob created in setup', async (ctx) => {
        skipIfDisabled(ctx, push);
        runOnlyIf(ctx, runPushSetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: layerBlobDigest });
        const resp = await client.do(req);
        expectStatusAny(resp, [404, 405], true);
      });

      if (!deleteManifestBeforeBlobs) {
        test('Delete manifest created in tests', async (ctx) => {
          skipIfDisabled(ctx, push);
          runOnlyIf(ctx, runPushSetup);
          let req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest });
          let resp = await client.do(req);
          expectStatusAny(resp, [405], true);
          if (emptyLayerManifestRef !== '') {
            req = client.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: emptyLayerManifestDigest });
            resp = await client.do(req);
            expectStatusAny(resp, [405], true);
          }
        });
      }
    });
  });
});
