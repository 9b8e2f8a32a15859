import { createHmac, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config.js';
import type { MetadataIndex } from '../db/index.js';
import { globToRegExp } from '../glob.js';
import { USER_AGENT } from '../version.js';

export type EventAction = 'push' | 'pull' | 'delete';

/** What happened to a manifest or tag; the JSON body of every webhook delivery. */
export interface RegistryEvent {
  id: string;
  action: EventAction;
  timestamp: string;
  repository: string;
  /** The tag pushed, pulled or deleted; absent for requests by digest. */
  tag?: string;
  digest?: string;
  mediaType?: string;
  size?: number;
  actor: { name: string };
  /** `host` is the Host (or :authority) the client used, `id` the request's id in the log. */
  request: { id: string; addr: string; host: string; method: string; userAgent?: string };
}

/** The media type of Distribution's (registry:2) event envelope. */
export const DISTRIBUTION_EVENTS_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** Where events come from, for Distribution's `source` and target URLs. */
export interface EventSource {
  /** `http` or `https`: how clients reach the registry. */
  scheme: string;
  /** The registry's port, for `source.addr` (`<host name>:<port>`). */
  port: number;
}

/**
 * The event in Distribution's envelope, as registry:2 sends it, so receivers written
 * for it keep working: `size` also as the older `length`, `url` to the manifest by
 * digest, an anonymous actor as `{}`, and `source` naming this instance.
 */
function distributionEnvelope(event: RegistryEvent, source: EventSource, instanceID: string): string {
  const { request } = event;
  const target = {
    ...(event.mediaType !== undefined && { mediaType: event.mediaType }),
    ...(event.digest !== undefined && { digest: event.digest }),
    ...(event.size !== undefined && { size: event.size, length: event.size }),
    repository: event.repository,
    ...(event.digest !== undefined && request.host !== '' && { url: `${source.scheme}://${request.host}/v2/${event.repository}/manifests/${event.digest}` }),
    ...(event.tag !== undefined && { tag: event.tag }),
  };
  return JSON.stringify({
    events: [
      {
        id: event.id,
        timestamp: event.timestamp,
        action: event.action,
        target,
        request: { id: request.id, addr: request.addr, host: request.host, method: request.method, useragent: request.userAgent ?? '' },
        actor: event.actor.name === 'anonymous' ? {} : { name: event.actor.name },
        source: { addr: `${hostname()}:${source.port}`, instanceID },
      },
    ],
  });
}

interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

interface DeliveryRow {
  id: number;
  endpoint: string;
  repository: string;
  event_id: string;
  body: string;
  attempts: number;
}

type Endpoint = Config['notifications']['endpoints'][number] & { matches: RegExp[] };

export const SIGNATURE_HEADER = 'X-Berth-Signature-256';

/** `sha256=<hex>`: the HMAC-SHA256 of the body with the endpoint's secret, as GitHub signs. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Webhook notifications from a durable queue in the index. An event becomes one row per
 * interested endpoint in the same transaction; per endpoint and repository only the
 * oldest row is ever in flight, so each receiver sees a repository's events in order.
 * A row is deleted once its receiver answers 2xx; failures are retried with exponential
 * back-off (retryBackoff doubling up to maxRetryBackoff), also after a restart.
 */
export class Notifier {
  private readonly endpoints: Map<string, Endpoint>;
  private readonly stmt;
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Distribution's `source.instanceID`: one per process. */
  private readonly instanceID = randomUUID();

  constructor(
    index: MetadataIndex,
    private readonly config: Config['notifications'],
    private readonly log: Logger,
    private readonly observe: (endpoint: string, delivered: boolean) => void = () => {},
    private readonly source: EventSource = { scheme: 'http', port: 5000 },
  ) {
    this.endpoints = new Map(config.endpoints.map((e) => [e.name, { ...e, matches: e.repositories.map(globToRegExp) }]));
    const db = index.database;
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO webhook_deliveries (endpoint, repository, event_id, body, next_attempt_at) VALUES (?, ?, ?, ?, ?)',
      ),
      heads: db.prepare(
        `SELECT d.id, d.endpoint, d.repository, d.event_id, d.body, d.attempts, d.next_attempt_at FROM webhook_deliveries d
         JOIN (SELECT min(id) AS id FROM webhook_deliveries GROUP BY endpoint, repository) h ON h.id = d.id`,
      ),
      delivered: db.prepare('DELETE FROM webhook_deliveries WHERE id = ?'),
      failed: db.prepare('UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?'),
      endpoints: db.prepare('SELECT DISTINCT endpoint FROM webhook_deliveries').pluck(),
      dropEndpoint: db.prepare('DELETE FROM webhook_deliveries WHERE endpoint = ?'),
    };
    this.publishRows = db.transaction((rows: Array<[string, string, string, string, number]>) => {
      for (const row of rows) this.stmt.insert.run(...row);
    });
    // Deliveries queued for endpoints no longer configured can never be delivered.
    for (const name of this.stmt.endpoints.all() as string[]) {
      if (this.endpoints.has(name)) continue;
      const dropped = this.stmt.dropEndpoint.run(name).changes;
      log.warn({ endpoint: name, dropped }, 'dropped webhook deliveries of an endpoint no longer configured');
    }
  }

  private readonly publishRows;

  get enabled(): boolean {
    return this.endpoints.size > 0;
  }

  /** Queues `event` for every endpoint whose filters match, then delivers in the background. */
  publish(event: Omit<RegistryEvent, 'id' | 'timestamp'>): void {
    const full: RegistryEvent = { id: randomUUID(), timestamp: new Date().toISOString(), ...event };
    const bodies = {
      berth: () => JSON.stringify(full),
      distribution: () => distributionEnvelope(full, this.source, this.instanceID),
    };
    const now = Date.now();
    const rows: Array<[string, string, string, string, number]> = [];
    for (const endpoint of this.endpoints.values()) {
      if (!endpoint.events.includes(event.action)) continue;
      if (!endpoint.matches.some((glob) => glob.test(event.repository))) continue;
      rows.push([endpoint.name, event.repository, full.id, bodies[endpoint.format](), now]);
    }
    if (rows.length === 0) return;
    this.publishRows(rows);
    this.pump();
  }

  /** Starts delivering what the queue holds (after a restart, too). */
  start(): void {
    if (this.enabled) this.pump();
  }

  /** Stops scheduling deliveries and waits for those in flight (each bounded by its endpoint's timeout). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.all(this.inFlight.values());
  }

  /** Sends every queue head that is due and not in flight; sleeps until the next one is due. */
  private pump(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    let nextDue = Infinity;
    for (const row of this.stmt.heads.all() as Array<DeliveryRow & { next_attempt_at: number }>) {
      const key = `${row.endpoint}\n${row.repository}`;
      if (this.inFlight.has(key)) continue;
      const endpoint = this.endpoints.get(row.endpoint);
      if (!endpoint) continue;
      if (row.next_attempt_at > now) {
        nextDue = Math.min(nextDue, row.next_attempt_at);
        continue;
      }
      const attempt = this.deliver(endpoint, row).finally(() => {
        this.inFlight.delete(key);
        this.pump();
      });
      this.inFlight.set(key, attempt);
    }
    if (nextDue !== Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(nextDue - Date.now(), 0));
      this.timer.unref();
    }
  }

  private async deliver(endpoint: Endpoint, row: DeliveryRow): Promise<void> {
    const parsed = JSON.parse(row.body) as RegistryEvent | { events: [RegistryEvent] };
    const headers: Record<string, string> = {
      ...endpoint.headers,
      // By the body queued: a row queued before the endpoint's format changed keeps its own.
      'Content-Type': 'events' in parsed ? DISTRIBUTION_EVENTS_TYPE : 'application/json',
      'User-Agent': USER_AGENT,
      'X-Berth-Event': ('events' in parsed ? parsed.events[0] : parsed).action,
      'X-Berth-Event-Id': row.event_id,
      'X-Berth-Delivery-Attempt': String(row.attempts + 1),
    };
    if (endpoint.secret !== '') headers[SIGNATURE_HEADER] = signature(endpoint.secret, row.body);
    let error: string | undefined;
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers,
        body: row.body,
        signal: AbortSignal.timeout(endpoint.timeout),
        redirect: 'error',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) error = `HTTP ${res.status}`;
    } catch (err) {
      error = (err as Error).message;
    }
    this.observe(endpoint.name, error === undefined);
    if (error === undefined) {
      this.stmt.delivered.run(row.id);
      return;
    }
    const delay = Math.min(this.config.retryBackoff * 2 ** Math.min(row.attempts, 30), this.config.maxRetryBackoff);
    this.stmt.failed.run(Date.now() + delay, error, row.id);
    if (row.attempts === 0 || (row.attempts + 1) % 10 === 0) {
      this.log.warn({ endpoint: endpoint.name, repository: row.repository, attempts: row.attempts + 1, error, retryInMs: delay }, 'webhook delivery failed');
    }
  }
}
