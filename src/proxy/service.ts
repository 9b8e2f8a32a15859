import type { Readable } from 'node:stream';
import type { Statement } from 'better-sqlite3';
import type { BlobFiles } from '../blobstore/files.js';
import type { BlobService } from '../blobstore/service.js';
import type { Config } from '../config.js';
import type { ManifestRecord, MetadataIndex } from '../db/index.js';
import { digestOf, tryParseDigest, type Digest } from '../digest.js';
import { oci, RegistryError } from '../errors.js';
import type { ImageFacts } from '../manifests/images.js';
import type { Reference } from '../manifests/service.js';
import { manifestRow, parseManifest } from '../manifests/parse.js';
import { BlobFlight } from './blob-flight.js';
import { UpstreamClient, type UpstreamResponse } from './client.js';
import { MirrorRouting, type MirrorTarget } from './routing.js';

/** Where log lines go; a pino logger fits. */
export interface ProxyLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** How a mirrored blob is served. */
export type MirroredBlob =
  /** Linked in the cache repository: serve it like any local blob. */
  | { kind: 'cached' }
  /** Being downloaded: stream it through. */
  | { kind: 'streaming'; size: number | undefined; body: Readable }
  /** Known upstream but not fetched (a HEAD request). */
  | { kind: 'remote'; size: number | undefined };

/**
 * The pull-through cache. Mirrored content lives in ordinary repositories named
 * `<upstream>/<remote repository>` (so GC, fsck and the listings treat it like any other
 * content); this module keeps its own bookkeeping: when each cached tag was last checked
 * against its upstream. Tags are revalidated with a HEAD once older than the upstream's
 * `tagTtl`; digests are immutable. Concurrent requests for the same manifest or blob share
 * one upstream request.
 */
export class PullThrough {
  readonly routing: MirrorRouting;
  private readonly clients = new Map<string, UpstreamClient>();
  private readonly manifestFlights = new Map<string, Promise<ManifestRecord>>();
  private readonly blobFlights = new Map<string, Promise<BlobFlight>>();
  private readonly stmt: {
    checkedAt: Statement<[string, string], { checked_at: number }>;
    setChecked: Statement<[string, string, number]>;
    pulled: Statement<[string, string, number, number]>;
    usage: Statement<[string], { bytes: number }>;
    leastRecent: Statement<[], { repo: string; digest: string }>;
    forget: Statement<[string, string]>;
    unlinkUnreferenced: Statement<[number]>;
    dropTags: Statement<[number, string]>;
    dropManifest: Statement<[number, string]>;
    forgetTags: Statement<[string, number]>;
    awaiting: Statement<[string, string], { id: number; content: Buffer; mediaType: string }>;
  };
  /** Requests answered from the cache, and those that went upstream (for the storage overview). */
  private hits = 0;
  private misses = 0;
  /** Checks of cached images run one after another, in the background. */
  private checks: Promise<unknown> = Promise.resolve();

  /** The upstreams' names as JSON, for the cache-size query. */
  private readonly upstreamNames: string;

  constructor(
    private readonly config: Config,
    private readonly index: MetadataIndex,
    private readonly blobs: BlobService,
    private readonly files: BlobFiles,
    private readonly images?: ImageFacts,
    private readonly now: () => number = Date.now,
  ) {
    this.routing = new MirrorRouting(config.proxy);
    for (const u of config.proxy.upstreams) this.clients.set(u.name, new UpstreamClient(u, now));
    const db = index.database;
    this.stmt = {
      checkedAt: db.prepare('SELECT checked_at FROM proxy_tags WHERE repo = ? AND tag = ?'),
      setChecked: db.prepare(
        'INSERT INTO proxy_tags (repo, tag, checked_at) VALUES (?, ?, ?) ON CONFLICT (repo, tag) DO UPDATE SET checked_at = excluded.checked_at',
      ),
      // Written at most once a minute per manifest, so pulls rarely wait for a commit.
      pulled: db.prepare(
        `INSERT INTO proxy_pulls (repo, digest, pulled_at) VALUES (?, ?, ?)
         ON CONFLICT (repo, digest) DO UPDATE SET pulled_at = excluded.pulled_at WHERE pulled_at < ?`,
      ),
      // Bytes of the blobs linked into the upstreams' cache repositories.
      usage: db.prepare(
        `SELECT COALESCE(SUM(b.size), 0) AS bytes FROM blobs b WHERE EXISTS (
           SELECT 1 FROM repo_blobs l JOIN repositories r ON r.id = l.repo_id
           WHERE l.digest = b.digest AND substr(r.name, 1, instr(r.name, '/') - 1) IN (SELECT value FROM json_each(?)))`,
      ),
      leastRecent: db.prepare('SELECT repo, digest FROM proxy_pulls ORDER BY pulled_at, repo, digest LIMIT 1'),
      forget: db.prepare('DELETE FROM proxy_pulls WHERE repo = ? AND digest = ?'),
      unlinkUnreferenced: db.prepare(
        `DELETE FROM repo_blobs WHERE repo_id = ? AND NOT EXISTS (
           SELECT 1 FROM manifest_refs f JOIN manifests m ON m.id = f.manifest_id
           WHERE m.repo_id = repo_blobs.repo_id AND f.digest = repo_blobs.digest AND f.kind = 'blob')`,
      ),
      // Eviction runs in one transaction on this connection: its deletes must use it too.
      dropTags: db.prepare('DELETE FROM tags WHERE repo_id = ? AND digest = ?'),
      dropManifest: db.prepare('DELETE FROM manifests WHERE repo_id = ? AND digest = ?'),
      forgetTags: db.prepare('DELETE FROM proxy_tags WHERE repo = ? AND tag NOT IN (SELECT name FROM tags WHERE repo_id = ?)'),
      // Cached images using a blob whose config was not read or whose layers were not checked yet.
      awaiting: db.prepare(
        `SELECT m.id, m.content, m.media_type AS mediaType FROM repositories r
         JOIN manifests m ON m.repo_id = r.id
         JOIN manifest_refs f ON f.manifest_id = m.id AND f.kind = 'blob' AND f.digest = ?
         JOIN images i ON i.manifest_id = m.id
         WHERE r.name = ? AND i.kind = 'image' AND (i.verification IS NULL OR i.config_read = 0)`,
      ),
    };
    this.upstreamNames = JSON.stringify(config.proxy.upstreams.map((u) => u.name));
  }

  /** The mirror serving `name` (with containerd's `?ns=`), or undefined for a local repository. */
  resolve(name: string, ns: string | undefined): MirrorTarget | undefined {
    return this.routing.resolve(name, ns);
  }

  /** A manifest by tag or digest, from the cache when it may be, else from the upstream. */
  async manifest(target: MirrorTarget, reference: Reference, log: ProxyLog): Promise<ManifestRecord> {
    const manifest = await this.lookupManifest(target, reference, log);
    const now = this.now();
    this.stmt.pulled.run(target.cache, manifest.digest, now, now - PULL_RESOLUTION_MS);
    return manifest;
  }

  private async lookupManifest(target: MirrorTarget, reference: Reference, log: ProxyLog): Promise<ManifestRecord> {
    const client = this.clients.get(target.upstream)!;
    if (reference.digest) {
      const digest = reference.digest.value;
      const cached = this.index.manifestByDigest(target.cache, digest);
      if (cached) return this.hit(cached);
      return this.shared(`${target.cache}@${digest}`, () => this.fetchManifest(target, client, digest, undefined, log));
    }
    const tag = reference.tag!;
    const cached = this.index.manifestByTag(target.cache, tag);
    if (!cached) return this.shared(`${target.cache}:${tag}`, () => this.fetchManifest(target, client, tag, tag, log));
    const checkedAt = this.stmt.checkedAt.get(target.cache, tag)?.checked_at ?? 0;
    if (this.now() - checkedAt < client.config.tagTtl) return this.hit(cached);
    return this.shared(`${target.cache}:${tag}`, async () => {
      let current: string | null;
      try {
        const res = await client.manifest('HEAD', target.remote, tag);
        await res.discard();
        if (res.status === 404) throw this.manifestUnknown(client, target, tag);
        if (res.status !== 200) throw client.unavailable(`HEAD ${target.remote}:${tag} answered HTTP ${res.status}`);
        current = res.headers.get('docker-content-digest');
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') throw err;
        log.warn({ upstream: client.name, tag, digest: cached.digest, err }, 'upstream unreachable: serving a stale cached manifest');
        return cached;
      }
      if (current === cached.digest) {
        this.stmt.setChecked.run(target.cache, tag, this.now());
        return cached;
      }
      return this.fetchManifest(target, client, current !== null && tryParseDigest(current) ? current : tag, tag, log);
    });
  }

  /** Fetches a manifest by `reference`, verifies it and stores it (tagged `tag`, if given). */
  private async fetchManifest(
    target: MirrorTarget,
    client: UpstreamClient,
    reference: string,
    tag: string | undefined,
    log: ProxyLog,
  ): Promise<ManifestRecord> {
    const res = await client.manifest('GET', target.remote, reference);
    if (res.status === 404) {
      await res.discard();
      throw this.manifestUnknown(client, target, reference);
    }
    if (res.status !== 200) {
      await res.discard();
      throw client.unavailable(`GET ${target.remote}:${reference} answered HTTP ${res.status}`);
    }
    const body = await this.receive(client, () => res.text(this.config.manifests.maxBytes));
    const expected = tryParseDigest(reference) ?? tryParseDigest(res.headers.get('docker-content-digest') ?? '');
    const digest = digestOf(body, expected?.algorithm);
    if (expected && expected.value !== digest) {
      throw client.unavailable(`the manifest it sent for ${target.remote}:${reference} hashes to ${digest}, not ${expected.value}`);
    }
    const parsed = parseManifest(body, res.headers.get('content-type') ?? undefined);
    const record = manifestRow(body, digest, parsed);
    this.misses++;
    // The blobs and children arrive later, as clients ask for them: no reference checks,
    // and an image's layers are checked once they are all cached (see `cached`).
    const image = await this.images?.describe(target.cache, parsed, this.config.verify.layers === 'off' ? 'unchecked' : null);
    await this.index.putManifest(target.cache, record, tag, () => undefined, image);
    if (tag !== undefined) this.stmt.setChecked.run(target.cache, tag, this.now());
    if (parsed.kind === 'image') this.afterCaching(target.cache, parsed.config!.digest, log);
    return record;
  }

  /**
   * A blob of a mirrored repository. A blob the store already holds (pushed locally or
   * cached for another repository) is linked once the upstream confirms the repository
   * has it, without downloading it again.
   */
  async blob(target: MirrorTarget, digest: Digest, method: 'GET' | 'HEAD', log: ProxyLog): Promise<MirroredBlob> {
    const client = this.clients.get(target.upstream)!;
    const key = `${target.cache}@${digest.value}`;
    for (let first = true; ; first = false) {
      if (this.index.linkedBlobSize(target.cache, digest.value) !== undefined) {
        if (first) this.hits++;
        return { kind: 'cached' };
      }
      if (first) this.misses++;
      let flight = this.blobFlights.get(key);
      if (!flight) {
        if (this.index.blobSize(digest.value) !== undefined) {
          const res = await client.blob('HEAD', target.remote, digest.value);
          await res.discard();
          if (res.status !== 200) throw this.blobUnknown(client, target, digest, res.status);
          await this.index.mountBlob(target.cache, digest.value, undefined);
          this.enforceCap(log);
          this.afterCaching(target.cache, digest.value, log);
          continue;
        }
        if (method === 'HEAD') {
          const res = await client.blob('HEAD', target.remote, digest.value);
          await res.discard();
          if (res.status !== 200) throw this.blobUnknown(client, target, digest, res.status);
          return { kind: 'remote', size: contentLength(res) };
        }
        flight = this.startBlob(client, target, digest, log);
        this.blobFlights.set(key, flight);
        const settled = () => {
          if (this.blobFlights.get(key) === flight) this.blobFlights.delete(key);
        };
        flight.then((f) => f.done.then(settled, settled), settled);
      }
      const body = (await flight).reader();
      // A flight that finished meanwhile has committed the blob (or failed): look again.
      if (body) return { kind: 'streaming', size: (await flight).size, body };
    }
  }

  private async startBlob(client: UpstreamClient, target: MirrorTarget, digest: Digest, log: ProxyLog): Promise<BlobFlight> {
    const res = await client.blob('GET', target.remote, digest.value);
    if (res.status !== 200) {
      await res.discard();
      throw this.blobUnknown(client, target, digest, res.status);
    }
    const flight = new BlobFlight(digest, contentLength(res), {
      tempPath: (id) => this.files.tempPath(id),
      commit: async (path, size) => {
        await this.blobs.commit(target.cache, path, digest, size);
        this.enforceCap(log);
        this.afterCaching(target.cache, digest.value, log);
      },
    });
    flight.start(res.body(), (err) => {
      client.failed();
      return client.unavailable(`download of ${digest.value} failed: ${err.message}`);
    });
    flight.done.catch((err: unknown) => log.error({ upstream: client.name, digest: digest.value, err }, 'caching a mirrored blob failed'));
    return flight;
  }

  /**
   * Keeps the cached blobs within `proxy.maxBytes`: drops the least recently pulled
   * mirrored manifests (and their tags) and unlinks the blobs no remaining manifest of
   * that repository references. The collector removes the files once no kept manifest,
   * local or mirrored, references them.
   */
  private enforceCap(log: ProxyLog): void {
    const cap = this.config.proxy.maxBytes;
    if (cap === 0) return;
    try {
      this.evict(cap, log);
    } catch (err) {
      // The blob is cached either way; the next one tries again.
      log.error({ err, maxBytes: cap }, 'cache size cap: eviction failed');
    }
  }

  private evict(cap: number, log: ProxyLog): void {
    const evicted = this.index.write(() => {
      const dropped: string[] = [];
      while (this.stmt.usage.get(this.upstreamNames)!.bytes > cap) {
        const oldest = this.stmt.leastRecent.get();
        if (!oldest) break;
        this.stmt.forget.run(oldest.repo, oldest.digest);
        const repoId = this.index.repositoryId(oldest.repo);
        if (repoId === undefined) continue;
        this.stmt.dropTags.run(repoId, oldest.digest);
        this.stmt.dropManifest.run(repoId, oldest.digest);
        this.stmt.unlinkUnreferenced.run(repoId);
        this.stmt.forgetTags.run(oldest.repo, repoId);
        dropped.push(`${oldest.repo}@${oldest.digest}`);
      }
      return dropped;
    });
    if (evicted.length > 0) log.info({ evicted, maxBytes: cap }, 'cache size cap: evicted least recently pulled mirrored manifests');
  }

  /** The cache's size and how often it answered without the upstream. */
  stats(): { cacheBytes: number; hits: number; misses: number } {
    return { cacheBytes: this.stmt.usage.get(this.upstreamNames)!.bytes, hits: this.hits, misses: this.misses };
  }

  private hit(manifest: ManifestRecord): ManifestRecord {
    this.hits++;
    return manifest;
  }

  /**
   * A blob of `repo` is cached: the cached images using it get their config read and,
   * once all their blobs are there, their layers checked (a mismatch is logged and
   * counted; the mirror serves what the upstream has). In the background: the client
   * that brought the blob does not wait.
   */
  private afterCaching(repo: string, digest: string, log: ProxyLog): void {
    if (!this.images) return;
    const images = this.images;
    const work = async () => {
      for (const m of this.stmt.awaiting.all(digest, repo)) {
        const parsed = parseManifest(m.content, m.mediaType);
        const checked = await images.checkMirrored(repo, parsed, log);
        this.index.images.update([[m.id, checked?.record ?? (await images.describe(repo, parsed, null))]]);
      }
    };
    const running = this.checks.then(work).catch((err: unknown) => log.error({ err, repository: repo }, 'checking a mirrored image failed'));
    this.checks = running;
  }

  /** Aborts the upstream requests in progress and waits for their downloads to settle. */
  async close(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    const flights = [...this.blobFlights.values()];
    await Promise.allSettled(flights.map((f) => f.then((flight) => flight.done)));
    await this.checks;
  }

  /** Runs `fetch` once for concurrent callers with the same key. */
  private shared<T extends ManifestRecord>(key: string, fetch: () => Promise<T>): Promise<T> {
    const running = this.manifestFlights.get(key) as Promise<T> | undefined;
    if (running) return running;
    const promise = fetch().finally(() => this.manifestFlights.delete(key));
    this.manifestFlights.set(key, promise);
    return promise;
  }

  /** Reads a response body, counting a failure against the upstream when it breaks off. */
  private async receive<T>(client: UpstreamClient, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      client.failed();
      throw client.unavailable(`reading the response failed: ${(err as Error).message}`);
    }
  }

  private manifestUnknown(client: UpstreamClient, target: MirrorTarget, reference: string) {
    return oci('MANIFEST_UNKNOWN', `manifest ${reference} is unknown to upstream "${client.name}" (repository ${target.remote})`, {
      upstream: client.name,
      reference,
    });
  }

  private blobUnknown(client: UpstreamClient, target: MirrorTarget, digest: Digest, status: number) {
    if (status === 404) {
      return oci('BLOB_UNKNOWN', `blob ${digest.value} is unknown to upstream "${client.name}" (repository ${target.remote})`, {
        upstream: client.name,
        digest: digest.value,
      });
    }
    return client.unavailable(`blob ${digest.value} answered HTTP ${status}`);
  }
}

/** How precisely the last pull of a cached manifest is recorded. */
const PULL_RESOLUTION_MS = 1000;

function contentLength(res: UpstreamResponse): number | undefined {
  const value = res.headers.get('content-length');
  return value === null || !/^\d+$/.test(value) ? undefined : Number(value);
}
