// Port of opencontainers/distribution-spec conformance/01_pull_test.go (test01Pull).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TestRegistry } from '../helpers/registry.js';
import {
  startConformanceRegistry,
  type Client,
  configs,
  deleteManifestBeforeBlobs,
  dummyDigest,
  envTagName,
  errorCodes,
  expect2xx,
  expectStatus,
  expectStatusAny,
  invalidManifestContent,
  layerBlobContentLength,
  layerBlobData,
  layerBlobDigest,
  manifests,
  nonexistentManifest,
  pull,
  runOnlyIf,
  runOnlyIfNot,
  runPullSetup,
  skipIfDisabled,
  suiteDescription,
  testTagName,
  titlePull,
} from './setup.js';

let reg: TestRegistry;
let client: Client;
beforeAll(async () => {
  ({ reg, client } = await startConformanceRegistry());
});
afterAll(async () => {
  await reg.close();
});

const config0 = configs[0]!;
const config1 = configs[1]!;
const manifest0 = manifests[0]!;
const manifest1 = manifests[1]!;

describe(suiteDescription, () => {
  describe(titlePull, () => {
    let tag = '';

    describe('Setup', () => {
      test('Populate registry with test blob', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', config0.digest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', config0.contentLength)
          .setBody(config0.content);
        resp = await client.do(req);
        expect2xx(resp);
      });

      test('Populate registry with test blob', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        let req = client.newRequest('POST', '/v2/<name>/blobs/uploads/');
        let resp = await client.do(req);
        req = client
          .newRequest('PUT', resp.getRelativeLocation())
          .setQueryParam('digest', config1.digest)
          .setHeader('Content-Type', 'application/octet-stream')
          .setHeader('Content-Length', config1.contentLength)
          .setBody(config1.content);
        resp = await client.do(req);
        expect2xx(resp);
      });

      test('Populate registry with test layer', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
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

      test('Populate registry with test manifest', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        tag = testTagName;
        const req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: tag })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(manifest0.content);
        const resp = await client.do(req);
        expect2xx(resp);
      });

      test('Populate registry with test manifest', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        const req = client
          .newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference: manifest1.digest })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(manifest1.content);
        const resp = await client.do(req);
        expect2xx(resp);
      });

      test('Get tag name from environment', (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIfNot(ctx, runPullSetup);
        const tmp = envTagName;
        if (tmp !== '') tag = tmp;
      });
    });

    describe('Pull blobs', () => {
      test('HEAD request to nonexistent blob should result in 404 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client.newRequest('HEAD', '/v2/<name>/blobs/<digest>', { digest: dummyDigest });
        const resp = await client.do(req);
        expectStatus(resp, 404);
      });

      test('HEAD request to existing blob should yield 200', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client.newRequest('HEAD', '/v2/<name>/blobs/<digest>', { digest: config0.digest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
        const h = resp.header('Docker-Content-Digest');
        if (h !== '') expect(h).toBe(config0.digest);
      });

      test('GET nonexistent blob should result in 404 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: dummyDigest });
        const resp = await client.do(req);
        expectStatus(resp, 404);
      });

      test('GET request to existing blob URL should yield 200', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: config0.digest });
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });
    });

    describe('Pull manifests', () => {
      test('HEAD request to nonexistent manifest should return 404', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client.newRequest('HEAD', '/v2/<name>/manifests/<reference>', { reference: nonexistentManifest });
        const resp = await client.do(req);
        expectStatus(resp, 404);
      });

      test('HEAD request to manifest[0] path (digest) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client
          .newRequest('HEAD', '/v2/<name>/manifests/<digest>', { digest: manifest0.digest })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
        const h = resp.header('Docker-Content-Digest');
        if (h !== '') expect(h).toBe(manifest0.digest);
      });

      test('HEAD request to manifest[1] path (digest) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client
          .newRequest('HEAD', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
        const h = resp.header('Docker-Content-Digest');
        if (h !== '') expect(h).toBe(manifest1.digest);
      });

      test('HEAD request to manifest path (tag) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        expect(tag).not.toBe('');
        const req = client
          .newRequest('HEAD', '/v2/<name>/manifests/<reference>', { reference: tag })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
        const h = resp.header('Docker-Content-Digest');
        if (h !== '') expect(h).toBe(manifest0.digest);
      });

      test('GET nonexistent manifest should return 404', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client.newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: nonexistentManifest });
        const resp = await client.do(req);
        expectStatus(resp, 404);
      });

      test('GET request to manifest[0] path (digest) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client
          .newRequest('GET', '/v2/<name>/manifests/<digest>', { digest: manifest0.digest })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });

      test('GET request to manifest[1] path (digest) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        const req = client
          .newRequest('GET', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });

      test('GET request to manifest path (tag) should yield 200 response', async (ctx) => {
        skipIfDisabled(ctx, pull);
        expect(tag).not.toBe('');
        const req = client
          .newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: tag })
          .setHeader('Accept', 'application/vnd.oci.image.manifest.v1+json');
        const resp = await client.do(req);
        expectStatus(resp, 200);
      });
    });

    describe('Error codes', () => {
      test('400 response body should contain OCI-conforming JSON message', async (ctx) => {
        skipIfDisabled(ctx, pull);
        // The Go suite sets a body on this GET; resty does not send GET payloads, so only
        // the Content-Type header goes out (Client.do mirrors that).
        const req = client
          .newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: 'sha256:totallywrong' })
          .setHeader('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
          .setBody(invalidManifestContent);
        const resp = await client.do(req);
        expectStatusAny(resp, [400, 404]);
        if (resp.status === 400) {
          const errorResponses = resp.errors();
          expect(errorResponses.length).toBeGreaterThan(0);
          expect(errorCodes).toContain(errorResponses[0]!.code);
        }
      });
    });

    describe('Teardown', () => {
      if (deleteManifestBeforeBlobs) {
        test('Delete manifest[0] created in setup', async (ctx) => {
          skipIfDisabled(ctx, pull);
          runOnlyIf(ctx, runPullSetup);
          const req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest0.digest });
          const resp = await client.do(req);
          expectStatusAny(resp, [405], true);
        });
        test('Delete manifest[1] created in setup', async (ctx) => {
          skipIfDisabled(ctx, pull);
          runOnlyIf(ctx, runPullSetup);
          const req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest });
          const resp = await client.do(req);
          expectStatusAny(resp, [405], true);
        });
      }

      test('Delete config[0] blob created in setup', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: config0.digest });
        const resp = await client.do(req);
        expectStatusAny(resp, [404, 405], true);
      });
      test('Delete config[1] blob created in setup', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: config1.digest });
        const resp = await client.do(req);
        expectStatusAny(resp, [404, 405], true);
      });

      test('Delete layer blob created in setup', async (ctx) => {
        skipIfDisabled(ctx, pull);
        runOnlyIf(ctx, runPullSetup);
        const req = client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest: layerBlobDigest });
        const resp = await client.do(req);
        expectStatusAny(resp, [404, 405], true);
      });

      if (!deleteManifestBeforeBlobs) {
        test('Delete manifest[0] created in setup', async (ctx) => {
          skipIfDisabled(ctx, pull);
          runOnlyIf(ctx, runPullSetup);
          const req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest0.digest });
          const resp = await client.do(req);
          expectStatusAny(resp, [405], true);
        });
        test('Delete manifest[1] created in setup', async (ctx) => {
          skipIfDisabled(ctx, pull);
          runOnlyIf(ctx, runPullSetup);
          const req = client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest });
          const resp = await client.do(req);
          expectStatusAny(resp, [405], true);
        });
      }
    });
  });
});
