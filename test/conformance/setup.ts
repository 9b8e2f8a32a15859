/**
 * Shared setup for the port of the OCI distribution-spec conformance suite
 * (opencontainers/distribution-spec, directory `conformance/`, v1.1 era:
 * setup.go, image.go, 01_pull_test.go, 02_push_test.go, 03_discovery_test.go,
 * 04_management_test.go).
 *
 * This file mirrors setup.go's `init()` (test data, env toggles) and the small
 * part of the reggie HTTP client the Go suite relies on (path templating with
 * <name>/<reference>/<digest>, query parameters merged into the URL, Location
 * helpers, OCI error parsing). Every workflow file imports it and runs against
 * its own fresh registry.
 *
 * Environment emulated (as if exported for the Go suite):
 *   OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
 *   OCI_NAMESPACE=myorg/myrepo OCI_CROSSMOUNT_NAMESPACE=myorg/other
 *   OCI_AUTOMATIC_CROSSMOUNT=1 (Berth mounts automatically when the blob exists in the store)
 *   OCI_DELETE_MANIFEST_BEFORE_BLOBS unset (default: true)
 *   OCI_BLOB_DIGEST / OCI_MANIFEST_DIGEST / OCI_TAG_NAME / OCI_TAG_LIST unset
 *
 * The suite runs once per authentication mode (vitest.config.ts: one project each, with
 * TEST_CONFORMANCE_AUTH=none|basic|token). With auth, the Go suite's OCI_USERNAME and
 * OCI_PASSWORD are set: the client answers challenges as real clients do (Basic
 * credentials, or a token fetched from the challenge's realm for its scope) and retries.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { expect, type TestContext } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';

// ---------------------------------------------------------------------------
// Constants (setup.go `const` block)
// ---------------------------------------------------------------------------

// pull = 1 << iota; push; contentDiscovery; contentManagement; numWorkflows
// The implicit repetition of `1 << iota` makes numWorkflows = 1 << 4 = 16 in setup.go,
// so 16 configs/manifests are generated (the suite uses indexes 0..4).
export const pull = 1 << 0;
export const push = 1 << 1;
export const contentDiscovery = 1 << 2;
export const contentManagement = 1 << 3;
export const numWorkflows = 1 << 4;

export const emptyLayerTestTag = 'emptylayer';
export const testTagName = 'tagtest0';

export const suiteDescription = 'OCI Distribution Conformance Tests';
export const titlePull = 'Pull';
export const titlePush = 'Push';
export const titleContentDiscovery = 'Content Discovery';
export const titleContentManagement = 'Content Management';

// layerBase64String is a base64 encoding of a simple tarball (see setup.go).
export const layerBase64String =
  'H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0' +
  'WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD' +
  'jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA';

// filter types
export const artifactTypeFilter = 'artifactType';

/**
 * errorCodes as built by setup.go: `BLOB_UNKNOWN = iota` continues the same const
 * block, so BLOB_UNKNOWN = 5 ... UNSUPPORTED = 19, and the indexed slice literal leaves
 * indexes 0..4 as "" (gomega's ContainElement therefore also matches an empty code).
 */
export const BLOB_UNKNOWN = 5;
export const UNSUPPORTED = 19;
export const errorCodes: readonly string[] = [
  '',
  '',
  '',
  '',
  '',
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
];

// ---------------------------------------------------------------------------
// Emulated environment (setup.go init(): env lookups)
// ---------------------------------------------------------------------------

export const namespace = 'myorg/myrepo'; // OCI_NAMESPACE
export const crossmountNamespace = 'myorg/other'; // OCI_CROSSMOUNT_NAMESPACE
export const testsToRun = pull | push | contentDiscovery | contentManagement;

// OCI_TAG_NAME, OCI_MANIFEST_DIGEST, OCI_BLOB_DIGEST unset -> setup runs.
export const runPullSetup: boolean = true;
export const runPushSetup: boolean = true;
// OCI_TAG_LIST unset -> setup runs.
export const runContentDiscoverySetup: boolean = true;
export const runContentManagementSetup: boolean = true;
// OCI_DELETE_MANIFEST_BEFORE_BLOBS unset -> default true.
export const deleteManifestBeforeBlobs: boolean = true;
// OCI_AUTOMATIC_CROSSMOUNT=1 -> the automatic-crossmount test runs, expecting it enabled.
export const runAutomaticCrossmountTest: boolean = true;
export const automaticCrossmountEnabled: boolean = true;
/** Values the Go suite would read from OCI_TAG_NAME / OCI_TAG_LIST (unset). */
export const envTagName: string = '';
export const envTagList: string = '';

// ---------------------------------------------------------------------------
// Skip helpers (SkipIfDisabled / RunOnlyIf / RunOnlyIfNot / Warn)
// ---------------------------------------------------------------------------

function userDisabled(test: number): boolean {
  return !((test & testsToRun) > 0);
}

export function skipIfDisabled(ctx: TestContext, test: number): void {
  if (userDisabled(test)) ctx.skip('you have skipped this test; workflow disabled');
}

export function runOnlyIf(ctx: TestContext, v: boolean): void {
  if (!v) ctx.skip('you have skipped this test.');
}

export function runOnlyIfNot(ctx: TestContext, v: boolean): void {
  if (v) ctx.skip('you have skipped this test.');
}

export function warn(message: string): void {
  console.warn(`WARNING: ${message}`);
}

// ---------------------------------------------------------------------------
// Test data (setup.go init(), image.go types)
// ---------------------------------------------------------------------------

export interface TestBlob {
  content: Buffer;
  contentLength: string;
  digest: string;
}

/** godigest.FromBytes */
export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * json.MarshalIndent(v, "", "\t"). JSON.stringify with a tab indent produces the same
 * layout as Go (`"key": value`, `[]` for empty slices). Objects below are built with
 * keys in Go struct-field order, omitting `omitempty` fields that are empty, and
 * `[]byte` fields encoded as standard base64 (nil -> null), as encoding/json does.
 * (None of the strings contain <, > or &, which Go would escape.)
 */
function marshalIndent(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v, null, '\t'), 'utf8');
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string; // []byte, omitempty, base64
  artifactType?: string;
  newUnspecifiedField: string | null; // []byte without omitempty: nil -> null
}

/** Builds a descriptor object with fields in image.go's order. */
function descriptor(d: {
  mediaType: string;
  digest: string;
  size: number;
  data?: Buffer;
  newUnspecifiedField?: Buffer;
}): Descriptor {
  // Go's field order: mediaType, digest, size, urls, annotations, data, platform, artifactType, newUnspecifiedField
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size } as Descriptor;
  if (d.data !== undefined && d.data.length > 0) out.data = d.data.toString('base64');
  out.newUnspecifiedField = d.newUnspecifiedField !== undefined ? d.newUnspecifiedField.toString('base64') : null;
  return out;
}

/** image.go `manifest` */
function manifestJSON(m: {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}): Record<string, unknown> {
  const o: Record<string, unknown> = { schemaVersion: m.schemaVersion };
  if (m.mediaType) o.mediaType = m.mediaType;
  if (m.artifactType) o.artifactType = m.artifactType;
  o.config = m.config;
  o.layers = m.layers;
  if (m.subject) o.subject = m.subject;
  if (m.annotations && Object.keys(m.annotations).length > 0) o.annotations = m.annotations;
  return o;
}

/** image.go `index` */
function indexJSON(m: {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}): Record<string, unknown> {
  const o: Record<string, unknown> = { schemaVersion: m.schemaVersion };
  if (m.mediaType) o.mediaType = m.mediaType;
  if (m.artifactType) o.artifactType = m.artifactType;
  o.manifests = m.manifests;
  if (m.subject) o.subject = m.subject;
  if (m.annotations && Object.keys(m.annotations).length > 0) o.annotations = m.annotations;
  return o;
}

// Adapted from setup.go randomString (crypto/rand).
export function randomString(n: number): string {
  const letters = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-';
  let ret = '';
  for (let i = 0; i < n; i++) ret += letters[randomInt(letters.length)];
  return ret;
}

/**
 * setup.go randomBlob(size, seed) draws `size` bytes from math/rand seeded with the
 * Ginkgo random seed; the seed is random per run, so random bytes are equivalent here.
 */
export function randomBlob(size: number): [string, Buffer] {
  const b = randomBytes(size);
  return [digestOf(b), b];
}

// create a unique config for each workflow category
export const configs: TestBlob[] = [];
for (let i = 0; i < numWorkflows; i++) {
  // in order to get a unique blob digest, we create a new author field for the config on each run.
  const randomAuthor = randomString(16);
  // image.go `image`: author(omitempty), architecture, variant(omitempty), os, rootfs{type, diff_ids}
  const configBlobContent = marshalIndent({
    author: randomAuthor,
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [] },
  });
  configs.push({
    content: configBlobContent,
    contentLength: String(configBlobContent.length),
    digest: digestOf(configBlobContent),
  });
}

export const layerBlobData = Buffer.from(layerBase64String, 'base64');
export const layerBlobDigest = digestOf(layerBlobData);
export const layerBlobContentLength = String(layerBlobData.length);

const layers: Descriptor[] = [
  descriptor({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: layerBlobData.length, digest: layerBlobDigest }),
];

function configDescriptor(c: TestBlob): Descriptor {
  return descriptor({
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: c.digest,
    size: c.content.length,
    data: c.content, // must be the config content.
    newUnspecifiedField: Buffer.from('hello world'), // content doesn't matter.
  });
}

// create a unique manifest for each workflow category
export const manifests: TestBlob[] = [];
for (let i = 0; i < numWorkflows; i++) {
  const manifestContent = marshalIndent(
    manifestJSON({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: configDescriptor(configs[i]!),
      layers,
    }),
  );
  manifests.push({
    content: manifestContent,
    contentLength: String(manifestContent.length),
    digest: digestOf(manifestContent),
  });
}

function cfg(i: number): TestBlob {
  return configs[i]!;
}
function man(i: number): TestBlob {
  return manifests[i]!;
}

// used in push test
export const emptyLayerManifestContent = marshalIndent(
  manifestJSON({ schemaVersion: 2, config: configDescriptor(cfg(1)), layers: [] }),
);
export const emptyLayerManifestDigest = digestOf(emptyLayerManifestContent);

export const nonexistentManifest = '.INVALID_MANIFEST_NAME';
export const invalidManifestContent = Buffer.from('blablabla');

const [blobADigest, blobA] = randomBlob(42);
export const testBlobA = blobA;
export const testBlobALength = String(testBlobA.length);
export const testBlobADigest = blobADigest;

/** Mutable chunked-blob state (setupChunkedBlob may rebuild it, as in the Go suite). */
export const chunked: {
  testBlobB: Buffer;
  testBlobBDigest: string;
  testBlobBChunk1: Buffer;
  testBlobBChunk1Length: string;
  testBlobBChunk2: Buffer;
  testBlobBChunk2Length: string;
  testBlobBChunk1Range: string;
  testBlobBChunk2Range: string;
} = {
  testBlobB: Buffer.alloc(0),
  testBlobBDigest: '',
  testBlobBChunk1: Buffer.alloc(0),
  testBlobBChunk1Length: '',
  testBlobBChunk2: Buffer.alloc(0),
  testBlobBChunk2Length: '',
  testBlobBChunk1Range: '',
  testBlobBChunk2Range: '',
};

export function setupChunkedBlob(size: number): void {
  const [dig, blob] = randomBlob(size);
  const half = Math.floor(size / 2) + 1;
  chunked.testBlobB = blob;
  chunked.testBlobBDigest = dig;
  chunked.testBlobBChunk1 = blob.subarray(0, half);
  chunked.testBlobBChunk1Length = String(chunked.testBlobBChunk1.length);
  chunked.testBlobBChunk1Range = `0-${chunked.testBlobBChunk1.length - 1}`;
  chunked.testBlobBChunk2 = blob.subarray(half);
  chunked.testBlobBChunk2Length = String(chunked.testBlobBChunk2.length);
  chunked.testBlobBChunk2Range = `${chunked.testBlobBChunk1.length}-${blob.length - 1}`;
}
setupChunkedBlob(42);

// used in referrers test (artifacts with Subject field set)
export const emptyJSONBlob = Buffer.from('{}');
export const emptyJSONDescriptor = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  size: emptyJSONBlob.length,
  digest: digestOf(emptyJSONBlob),
};
const emptyJSONDesc = (): Descriptor => descriptor(emptyJSONDescriptor);

export const testRefBlobA = Buffer.from('NHL Peanut Butter on my NHL bagel');
export const testRefBlobALength = String(testRefBlobA.length);
export const testRefBlobADigest = digestOf(testRefBlobA);
export const testRefArtifactTypeA = 'application/vnd.nhl.peanut.butter.bagel';

export const testRefBlobB = Buffer.from('NBA Strawberry Jam on my NBA croissant');
export const testRefBlobBLength = String(testRefBlobB.length);
export const testRefBlobBDigest = digestOf(testRefBlobB);
export const testRefArtifactTypeB = 'application/vnd.nba.strawberry.jam.croissant';

export const testAnnotationKey = 'org.opencontainers.conformance.test';
export const testAnnotationValues: Record<string, string> = {};

const subjectOf = (m: TestBlob): Descriptor =>
  descriptor({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: m.content.length, digest: digestOf(m.content) });

// artifact with Subject ref using config.MediaType = artifactType
export const refsManifestAConfigArtifactContent = marshalIndent(
  manifestJSON({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: descriptor({ mediaType: testRefArtifactTypeA, size: testRefBlobA.length, digest: digestOf(testRefBlobA) }),
    subject: subjectOf(man(4)),
    layers: [emptyJSONDesc()],
    annotations: { [testAnnotationKey]: 'test config a' },
  }),
);
export const refsManifestAConfigArtifactDigest = digestOf(refsManifestAConfigArtifactContent);
testAnnotationValues[refsManifestAConfigArtifactDigest] = 'test config a';

export const refsManifestBConfigArtifactContent = marshalIndent(
  manifestJSON({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: descriptor({ mediaType: testRefArtifactTypeB, size: testRefBlobB.length, digest: digestOf(testRefBlobB) }),
    subject: subjectOf(man(4)),
    layers: [emptyJSONDesc()],
    annotations: { [testAnnotationKey]: 'test config b' },
  }),
);
export const refsManifestBConfigArtifactDigest = digestOf(refsManifestBConfigArtifactContent);
testAnnotationValues[refsManifestBConfigArtifactDigest] = 'test config b';

// artifact with Subject ref using ArtifactType, config.MediaType = emptyJSON
export const refsManifestALayerArtifactContent = marshalIndent(
  manifestJSON({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: testRefArtifactTypeA,
    config: emptyJSONDesc(),
    subject: subjectOf(man(4)),
    layers: [descriptor({ mediaType: testRefArtifactTypeA, size: testRefBlobA.length, digest: digestOf(testRefBlobA) })],
    annotations: { [testAnnotationKey]: 'test layer a' },
  }),
);
export const refsManifestALayerArtifactDigest = digestOf(refsManifestALayerArtifactContent);
testAnnotationValues[refsManifestALayerArtifactDigest] = 'test layer a';

export const refsManifestBLayerArtifactContent = marshalIndent(
  manifestJSON({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: testRefArtifactTypeB,
    config: emptyJSONDesc(),
    subject: subjectOf(man(4)),
    layers: [descriptor({ mediaType: testRefArtifactTypeB, size: testRefBlobB.length, digest: digestOf(testRefBlobB) })],
    annotations: { [testAnnotationKey]: 'test layer b' },
  }),
);
export const refsManifestBLayerArtifactDigest = digestOf(refsManifestBLayerArtifactContent);
testAnnotationValues[refsManifestBLayerArtifactDigest] = 'test layer b';

// ManifestCLayerArtifact is the same as B but based on a subject that has not been pushed
export const refsManifestCLayerArtifactContent = marshalIndent(
  manifestJSON({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: testRefArtifactTypeB,
    config: emptyJSONDesc(),
    subject: subjectOf(man(3)),
    layers: [descriptor({ mediaType: testRefArtifactTypeB, size: testRefBlobB.length, digest: digestOf(testRefBlobB) })],
  }),
);
export const refsManifestCLayerArtifactDigest = digestOf(refsManifestCLayerArtifactContent);

export const testRefArtifactTypeIndex = 'application/vnd.food.stand';
export const refsIndexArtifactContent = marshalIndent(
  indexJSON({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    artifactType: testRefArtifactTypeIndex,
    manifests: [
      descriptor({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: refsManifestAConfigArtifactContent.length,
        digest: digestOf(refsManifestAConfigArtifactContent),
      }),
      descriptor({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: refsManifestALayerArtifactContent.length,
        digest: digestOf(refsManifestALayerArtifactContent),
      }),
    ],
    subject: subjectOf(man(4)),
    annotations: { [testAnnotationKey]: 'test index' },
  }),
);
export const refsIndexArtifactDigest = digestOf(refsIndexArtifactContent);
testAnnotationValues[refsIndexArtifactDigest] = 'test index';

export const dummyDigest = digestOf('hello world');

// ---------------------------------------------------------------------------
// Minimal reggie-like HTTP client over Node's global fetch
// ---------------------------------------------------------------------------

export interface RequestOptions {
  name?: string;
  reference?: string;
  digest?: string;
}

export class Request {
  readonly headers: Record<string, string> = {};
  readonly query: Array<[string, string]> = [];
  body: Buffer | undefined;

  constructor(
    readonly method: string,
    readonly url: string,
  ) {}

  setHeader(header: string, content: string): this {
    this.headers[header] = content;
    return this;
  }

  setQueryParam(param: string, content: string): this {
    const existing = this.query.findIndex(([k]) => k === param);
    if (existing >= 0) this.query.splice(existing, 1);
    this.query.push([param, content]);
    return this;
  }

  setBody(body: Buffer): this {
    this.body = body;
    return this;
  }
}

export class Response {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly headers: Headers,
    readonly body: Buffer,
  ) {}

  statusCode(): number {
    return this.status;
  }

  header(name: string): string {
    return this.headers.get(name) ?? '';
  }

  string(): string {
    return this.body.toString('utf8');
  }

  /** reggie GetRelativeLocation: path (+ "?" + raw query) of the Location header. */
  getRelativeLocation(): string {
    const loc = this.header('Location');
    let u: URL;
    try {
      u = new URL(loc, 'http://relative.invalid');
    } catch {
      return '';
    }
    let path = loc === '' ? '' : u.pathname;
    if (u.search !== '' && u.search !== '?') path += u.search;
    return path;
  }

  /** reggie GetAbsoluteLocation: the Location header as-is. */
  getAbsoluteLocation(): string {
    return this.header('Location');
  }

  /** reggie Errors(): parse an OCI error body; throws like Go returns err. */
  errors(): Array<{ code: string; message?: string; detail?: unknown }> {
    const parsed = JSON.parse(this.string()) as { errors?: Array<{ code: string; message?: string; detail?: unknown }> };
    if (!parsed || !Array.isArray(parsed.errors) || parsed.errors.length === 0) {
      throw new Error('body was valid json but could not be parsed');
    }
    return parsed.errors;
  }

  /** One-line description for assertion messages. */
  describe(): string {
    const text = this.string();
    return `${this.method} ${this.url} -> ${this.status}${text ? ` ${text.slice(0, 300)}` : ''}`;
  }
}

export class Client {
  /** The Authorization header that answered the last challenge; sent until another comes. */
  private authorization: string | undefined;

  constructor(
    readonly address: string,
    readonly defaultName: string = namespace,
    readonly credentials?: { username: string; password: string },
  ) {}

  newRequest(method: string, path: string, opts: RequestOptions = {}): Request {
    const name = opts.name ?? this.defaultName;
    let p = path;
    const replacements: Array<[string, string | undefined]> = [
      ['<name>', name],
      ['<reference>', opts.reference],
      ['<digest>', opts.digest],
    ];
    for (const [k, v] of replacements) if (v) p = p.split(k).join(v);
    p = p.replace(/^\/+/, '');
    return new Request(method, `${this.address.replace(/\/+$/, '')}/${p}`);
  }

  async do(req: Request): Promise<Response> {
    if (/<name>|<reference>|<digest>|<session_id>/.test(req.url)) throw new Error('request is invalid');
    const resp = await this.send(req);
    if (resp.status !== 401 || this.credentials === undefined) return resp;
    this.authorization = await this.answer(resp.header('WWW-Authenticate'), this.credentials);
    return this.send(req);
  }

  /** Credentials for a challenge: Basic directly, or a token from the Bearer realm for the scope. */
  private async answer(challenge: string, credentials: { username: string; password: string }): Promise<string> {
    const auth = basic(credentials.username, credentials.password);
    if (/^Basic /i.test(challenge)) return auth;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (!/^Bearer /i.test(challenge) || !params.realm) throw new Error(`unexpected challenge: ${challenge}`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    for (const scope of (params.scope ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', scope);
    const res = await fetch(url, { headers: { Authorization: auth } });
    if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
    return `Bearer ${((await res.json()) as { token: string }).token}`;
  }

  private async send(req: Request): Promise<Response> {
    const u = new URL(req.url);
    for (const [k, v] of req.query) u.searchParams.set(k, v);
    const headers: Record<string, string> = { 'User-Agent': 'distribution-spec-conformance-tests' };
    for (const [k, v] of Object.entries(req.headers)) {
      // Go's net/http never sends a Content-Length taken from the header map: it derives
      // it from the body ([]byte bodies -> exact length; no body on POST/PUT/PATCH -> 0).
      // fetch does the same from the body we pass, so the header is dropped here.
      if (k.toLowerCase() === 'content-length') continue;
      headers[k] = v;
    }
    if (this.authorization !== undefined) headers.Authorization = this.authorization;
    // resty does not send a payload on GET/HEAD/DELETE (AllowGetMethodPayload is off).
    const sendsBody = req.body !== undefined && !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(req.method);
    const res = await fetch(u, {
      method: req.method,
      headers,
      body: sendsBody ? new Uint8Array(req.body!) : undefined,
      redirect: 'follow',
    });
    const body = req.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await res.arrayBuffer());
    return new Response(req.method, u.toString(), res.status, res.headers, body);
  }
}

// ---------------------------------------------------------------------------
// Response helpers (setup.go getTagList etc.) and gomega-like matchers
// ---------------------------------------------------------------------------

export function getTagList(resp: Response): string[] {
  try {
    const tl = JSON.parse(resp.string()) as { tags?: unknown };
    return Array.isArray(tl?.tags) ? (tl.tags as string[]) : [];
  } catch {
    return [];
  }
}

export interface IndexDoc {
  manifests?: Array<{ digest: string; annotations?: Record<string, string> | null; [k: string]: unknown }> | null;
  [k: string]: unknown;
}

const is2xx = (s: number): boolean => s >= 200 && s < 300;

/** Expect(resp.StatusCode()).To(Equal(code)) */
export function expectStatus(resp: Response, code: number): void {
  expect(resp.status, resp.describe()).toBe(code);
}

/**
 * Expect(resp.StatusCode()).To(SatisfyAny(...)): `codes` lists exact codes, and
 * `any2xx` adds SatisfyAll(BeNumerically(">=", 200), BeNumerically("<", 300)).
 */
export function expectStatusAny(resp: Response, codes: number[], any2xx = false): void {
  const ok = codes.includes(resp.status) || (any2xx && is2xx(resp.status));
  const wanted = [...(any2xx ? ['2xx'] : []), ...codes.map(String)].join(' or ');
  expect(ok, `expected ${wanted}: ${resp.describe()}`).toBe(true);
}

/** Expect(resp.StatusCode()).To(SatisfyAll(BeNumerically(">=", 200), BeNumerically("<", 300))) */
export function expect2xx(resp: Response): void {
  expect(is2xx(resp.status), `expected 2xx: ${resp.describe()}`).toBe(true);
}

// ---------------------------------------------------------------------------
// The registry under test, in the authentication mode of this run
// ---------------------------------------------------------------------------

export type AuthMode = 'none' | 'basic' | 'token';
export const authMode = (process.env.TEST_CONFORMANCE_AUTH ?? 'none') as AuthMode;

/**
 * A fresh Berth for one workflow file and a client for it. With auth, one user may do
 * everything (OCI_USERNAME/OCI_PASSWORD) and nobody else may do anything.
 */
export async function startConformanceRegistry(): Promise<{ reg: TestRegistry; client: Client }> {
  if (authMode === 'none') {
    const reg = await startRegistry();
    return { reg, client: new Client(reg.url) };
  }
  const credentials = { username: 'conformance', password: randomString(24) };
  const reg = await startRegistry(
    {
      auth: {
        mode: authMode,
        rules: [{ repositories: '**', users: [credentials.username], actions: ['pull', 'push', 'delete'] }],
      },
    },
    { users: [{ name: credentials.username, password: credentials.password }] },
  );
  return { reg, client: new Client(reg.url, namespace, credentials) };
}
