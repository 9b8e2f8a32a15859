import type { MetadataIndex } from '../db/index.js';
import type { GcReport } from '../gc/collector.js';
import type { Maintenance } from './maintenance.js';

/** One finished request, as the metrics count it. */
export interface RequestSample {
  /** The route class: base, catalog, tags, manifest, blob, uploads, upload, referrers, admin, token, … */
  route: string;
  method: string;
  status: number;
  seconds: number;
  bytesIn: number;
  bytesOut: number;
}

type Labels = Record<string, string>;
type Sample = { labels: Labels; value: number; metricName?: string };

/** A metric as prom-client's registry renders it (its `registerMetric` contract). */
interface Collected {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>;
  reset(): void;
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/** Counts per label set, kept in a Map keyed by the joined label values. */
class Tally {
  private readonly counts = new Map<string, { labels: Labels; value: number }>();

  add(key: string, labels: () => Labels, value: number): void {
    const entry = this.counts.get(key);
    if (entry) entry.value += value;
    else this.counts.set(key, { labels: labels(), value });
  }

  samples(): Sample[] {
    return [...this.counts.values()].map(({ labels, value }) => ({ labels, value }));
  }
}

/**
 * Berth's Prometheus metrics. Requests are counted in plain Maps (a few Map lookups per
 * request); prom-client, with Node's default process metrics, is loaded on the first
 * scrape, so a registry nobody scrapes never pays for it. Each app has a registry of its
 * own (several apps in one process, as in the tests, do not share counters). Store
 * sizes are read from the index when scraped.
 */
export class Metrics {
  private readonly requests = new Tally();
  private readonly durations = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();
  private readonly bytesIn = new Tally();
  private readonly bytesOut = new Tally();
  private uploading = 0;
  private readonly gcRuns = new Tally();
  private gcReclaimed = 0;
  private gcManifests = 0;
  private gcBlobs = 0;
  private readonly webhookDeliveries = new Tally();
  private readonly verifications = new Tally();
  private readonly layerDigests = new Tally();
  private registry: Promise<import('prom-client').Registry> | undefined;

  constructor(
    private readonly index: MetadataIndex,
    private readonly maintenance: Maintenance,
  ) {}

  request(sample: RequestSample): void {
    const { route, method, status } = sample;
    this.requests.add(`${route} ${method} ${status}`, () => ({ route, method, status: String(status) }), 1);
    const key = `${route} ${method}`;
    let duration = this.durations.get(key);
    if (!duration) {
      duration = { labels: { route, method }, buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.durations.set(key, duration);
    }
    const bucket = DURATION_BUCKETS.findIndex((le) => sample.seconds <= le);
    if (bucket >= 0) duration.buckets[bucket]!++;
    duration.sum += sample.seconds;
    duration.count++;
    if (sample.bytesIn > 0) this.bytesIn.add(route, () => ({ route }), sample.bytesIn);
    if (sample.bytesOut > 0) this.bytesOut.add(route, () => ({ route }), sample.bytesOut);
  }

  uploadStarted(): void {
    this.uploading++;
  }

  uploadEnded(): void {
    this.uploading--;
  }

  collected(report: GcReport | undefined): void {
    if (!report) {
      this.gcRuns.add('failed', () => ({ result: 'failed' }), 1);
      return;
    }
    const result = report.interrupted ? 'interrupted' : 'completed';
    this.gcRuns.add(result, () => ({ result }), 1);
    this.gcReclaimed += report.reclaimedBytes;
    this.gcManifests += report.manifests.length;
    this.gcBlobs += report.blobs.count;
  }

  delivery(endpoint: string, delivered: boolean): void {
    const result = delivered ? 'delivered' : 'failed';
    this.webhookDeliveries.add(`${endpoint} ${result}`, () => ({ endpoint, result }), 1);
  }

  /** An image's layers were checked against its config (`source`: push or mirror). */
  verification(source: string, result: string): void {
    this.verifications.add(`${source} ${result}`, () => ({ source, result }), 1);
  }

  /** What a blob holds uncompressed was computed (`when`: while it uploaded, or lazily). */
  layerDigest(when: string, format: string): void {
    this.layerDigests.add(`${when} ${format}`, () => ({ when, format }), 1);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.registry ??= this.createRegistry();
    const registry = await this.registry;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  private async createRegistry(): Promise<import('prom-client').Registry> {
    const { Registry, collectDefaultMetrics } = await import('prom-client');
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'berth_' });
    const stats = {
      blobs: this.index.database.prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM blobs').pluck(false),
      manifests: this.index.database.prepare('SELECT count(*) FROM manifests').pluck(),
      repositories: this.index.database.prepare('SELECT count(*) FROM repositories').pluck(),
      sessions: this.index.database.prepare('SELECT count(*) FROM uploads').pluck(),
    };
    const blobStats = () => stats.blobs.get() as { count: number; bytes: number };
    const one = (value: number): Sample[] => [{ labels: {}, value }];
    const metrics: Collected[] = [
      metric('berth_http_requests_total', 'HTTP requests answered, by route class, method and status', 'counter', () =>
        this.requests.samples(),
      ),
      metric(
        'berth_http_request_duration_seconds',
        'Time from request to the end of the response, by route class and method',
        'histogram',
        () => this.durationSamples(),
      ),
      metric(
        'berth_http_received_bytes_total',
        'Request bytes received (bodies and chunk framing on HTTP/1.1, declared Content-Length on HTTP/2)',
        'counter',
        () => this.bytesIn.samples(),
      ),
      metric('berth_http_sent_bytes_total', 'Response body bytes sent (Content-Length of the answers)', 'counter', () =>
        this.bytesOut.samples(),
      ),
      metric('berth_uploads_in_progress', 'Requests currently streaming blob data (upload PATCH/PUT and monolithic POST)', 'gauge', () =>
        one(this.uploading),
      ),
      metric('berth_blobs', 'Blobs in the store', 'gauge', () => one(blobStats().count)),
      metric('berth_store_bytes', 'Bytes of the blobs in the store', 'gauge', () => one(blobStats().bytes)),
      metric('berth_manifests', 'Manifests in all repositories', 'gauge', () => one(stats.manifests.get() as number)),
      metric('berth_repositories', 'Repositories', 'gauge', () => one(stats.repositories.get() as number)),
      metric('berth_upload_sessions', 'Open upload sessions', 'gauge', () => one(stats.sessions.get() as number)),
      metric('berth_read_only', '1 while the registry is in read-only (maintenance) mode', 'gauge', () =>
        one(this.maintenance.readOnly ? 1 : 0),
      ),
      metric('berth_gc_runs_total', 'Garbage collections run (not dry runs), by result', 'counter', () => this.gcRuns.samples()),
      metric('berth_gc_reclaimed_bytes_total', 'Blob file bytes removed by garbage collection', 'counter', () => one(this.gcReclaimed)),
      metric('berth_gc_manifests_removed_total', 'Manifests removed by garbage collection', 'counter', () => one(this.gcManifests)),
      metric('berth_gc_blobs_removed_total', 'Blob rows removed by garbage collection', 'counter', () => one(this.gcBlobs)),
      metric(
        'berth_image_verifications_total',
        'Images whose layers were checked against their config diff_ids, by source (push, mirror) and result (verified, mismatch, unverifiable, invalid)',
        'counter',
        () => this.verifications.samples(),
      ),
      metric(
        'berth_layer_digests_total',
        'Uncompressed digests of blobs computed, by when (upload, lazy) and detected format (gzip, zstd, none, invalid)',
        'counter',
        () => this.layerDigests.samples(),
      ),
      metric('berth_webhook_deliveries_total', 'Webhook delivery attempts, by endpoint and result (delivered, failed)', 'counter', () =>
        this.webhookDeliveries.samples(),
      ),
    ];
    for (const m of metrics) registry.registerMetric(m as unknown as import('prom-client').Metric);
    return registry;
  }

  /** Cumulative buckets, sum and count per label set, as Prometheus histograms are exposed. */
  private durationSamples(): Sample[] {
    const name = 'berth_http_request_duration_seconds';
    const samples: Sample[] = [];
    for (const { labels, buckets, sum, count } of this.durations.values()) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += buckets[i]!;
        samples.push({ labels: { ...labels, le: String(le) }, value: cumulative, metricName: `${name}_bucket` });
      });
      samples.push({ labels: { ...labels, le: '+Inf' }, value: count, metricName: `${name}_bucket` });
      samples.push({ labels, value: sum, metricName: `${name}_sum` });
      samples.push({ labels, value: count, metricName: `${name}_count` });
    }
    return samples;
  }
}

function metric(name: string, help: string, type: Collected['type'], values: () => Sample[]): Collected {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => {},
  };
}
