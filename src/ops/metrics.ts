import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

/**
 * Berth's Prometheus metrics, in a registry of their own (one per app, so several apps
 * in one process, as in the tests, do not share counters). Store sizes are read from
 * the index when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly duration: Histogram<'route' | 'method'>;
  private readonly bytesIn: Counter<'route'>;
  private readonly bytesOut: Counter<'route'>;
  private readonly uploading: Gauge;
  private readonly gcRuns: Counter<'result'>;
  private readonly gcReclaimed: Counter;
  private readonly gcManifests: Counter;
  private readonly gcBlobs: Counter;
  private readonly webhookDeliveries: Counter<'endpoint' | 'result'>;

  constructor(index: MetadataIndex, maintenance: Maintenance) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'berth_' });
    this.requests = new Counter({
      name: 'berth_http_requests_total',
      help: 'HTTP requests answered, by route class, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'berth_http_request_duration_seconds',
      help: 'Time from request to the end of the response, by route class and method',
      labelNames: ['route', 'method'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    });
    this.bytesIn = new Counter({
      name: 'berth_http_received_bytes_total',
      help: 'Request bytes received (bodies and chunk framing on HTTP/1.1, declared Content-Length on HTTP/2)',
      labelNames: ['route'],
      registers,
    });
    this.bytesOut = new Counter({
      name: 'berth_http_sent_bytes_total',
      help: 'Response body bytes sent (Content-Length of the answers)',
      labelNames: ['route'],
      registers,
    });
    this.uploading = new Gauge({
      name: 'berth_uploads_in_progress',
      help: 'Requests currently streaming blob data (upload PATCH/PUT and monolithic POST)',
      registers,
    });
    const stats = {
      blobs: index.database.prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM blobs').pluck(false),
      manifests: index.database.prepare('SELECT count(*) FROM manifests').pluck(),
      repositories: index.database.prepare('SELECT count(*) FROM repositories').pluck(),
      sessions: index.database.prepare('SELECT count(*) FROM uploads').pluck(),
    };
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('berth_blobs', 'Blobs in the store', () => (stats.blobs.get() as { count: number }).count);
    gauge('berth_store_bytes', 'Bytes of the blobs in the store', () => (stats.blobs.get() as { bytes: number }).bytes);
    gauge('berth_manifests', 'Manifests in all repositories', () => stats.manifests.get() as number);
    gauge('berth_repositories', 'Repositories', () => stats.repositories.get() as number);
    gauge('berth_upload_sessions', 'Open upload sessions', () => stats.sessions.get() as number);
    gauge('berth_read_only', '1 while the registry is in read-only (maintenance) mode', () => (maintenance.readOnly ? 1 : 0));
    this.gcRuns = new Counter({
      name: 'berth_gc_runs_total',
      help: 'Garbage collections run (not dry runs), by result',
      labelNames: ['result'],
      registers,
    });
    this.gcReclaimed = new Counter({ name: 'berth_gc_reclaimed_bytes_total', help: 'Blob file bytes removed by garbage collection', registers });
    this.gcManifests = new Counter({ name: 'berth_gc_manifests_removed_total', help: 'Manifests removed by garbage collection', registers });
    this.gcBlobs = new Counter({ name: 'berth_gc_blobs_removed_total', help: 'Blob rows removed by garbage collection', registers });
    this.webhookDeliveries = new Counter({
      name: 'berth_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by endpoint and result (delivered, failed)',
      labelNames: ['endpoint', 'result'],
      registers,
    });
  }

  request(sample: RequestSample): void {
    const { route, method } = sample;
    this.requests.inc({ route, method, status: String(sample.status) });
    this.duration.observe({ route, method }, sample.seconds);
    if (sample.bytesIn > 0) this.bytesIn.inc({ route }, sample.bytesIn);
    if (sample.bytesOut > 0) this.bytesOut.inc({ route }, sample.bytesOut);
  }

  uploadStarted(): void {
    this.uploading.inc();
  }

  uploadEnded(): void {
    this.uploading.dec();
  }

  collected(report: GcReport | undefined): void {
    if (!report) {
      this.gcRuns.inc({ result: 'failed' });
      return;
    }
    this.gcRuns.inc({ result: report.interrupted ? 'interrupted' : 'completed' });
    this.gcReclaimed.inc(report.reclaimedBytes);
    this.gcManifests.inc(report.manifests.length);
    this.gcBlobs.inc(report.blobs.count);
  }

  delivery(endpoint: string, delivered: boolean): void {
    this.webhookDeliveries.inc({ endpoint, result: delivered ? 'delivered' : 'failed' });
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
