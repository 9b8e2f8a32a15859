import type { Config } from '../config.js';
import { oci, RegistryError } from '../errors.js';
import { SUPPORTED_MANIFEST_TYPES } from '../manifests/media-types.js';
import { USER_AGENT } from '../version.js';

export type UpstreamConfig = Config['proxy']['upstreams'][number];

/** Every manifest type Berth stores, so the upstream never down-converts to schema 1. */
const MANIFEST_ACCEPT = SUPPORTED_MANIFEST_TYPES.join(', ');

/** After this many consecutive failures the upstream is left alone for a while. */
const FAILURES_BEFORE_BACKOFF = 3;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** A token is renewed this long before the expiry its server announced. */
const TOKEN_MARGIN_MS = 10_000;

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  /** The body, chunk by chunk; each chunk must arrive within the upstream's timeout. */
  body(): AsyncIterable<Uint8Array>;
  text(limit: number): Promise<Buffer>;
  discard(): Promise<void>;
}

/**
 * A client for one upstream registry: the Docker token flow (anonymous or with
 * credentials, tokens cached per scope until they expire), HTTP Basic, redirects to blob
 * storage (fetch follows them and drops Authorization when the origin changes), a timeout
 * for the response headers and between body chunks, and back-off after repeated failures.
 */
export class UpstreamClient {
  private readonly tokens = new Map<string, { header: string; expires: number }>();
  /** Set once the upstream asked for Basic: credentials are then sent up front. */
  private basic = false;
  private failures = 0;
  private downUntil = 0;
  /** Requests in progress, aborted by `close`. */
  private readonly inFlight = new Set<AbortController>();

  constructor(
    readonly config: UpstreamConfig,
    private readonly now: () => number = Date.now,
  ) {}

  get name(): string {
    return this.config.name;
  }

  manifest(method: 'GET' | 'HEAD', repo: string, reference: string): Promise<UpstreamResponse> {
    return this.send(method, repo, `/v2/${repo}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
  }

  blob(method: 'GET' | 'HEAD', repo: string, digest: string): Promise<UpstreamResponse> {
    return this.send(method, repo, `/v2/${repo}/blobs/${digest}`, {});
  }

  /** Aborts every request in progress. */
  close(): void {
    for (const controller of this.inFlight) controller.abort();
  }

  /** An error naming this upstream, for content that could not be fetched from it. */
  unavailable(reason: string): RegistryError {
    return oci('UNAVAILABLE', `upstream "${this.name}" (${this.config.url}) is unavailable: ${reason}`, { upstream: this.name });
  }

  private async send(method: string, repo: string, path: string, headers: Record<string, string>): Promise<UpstreamResponse> {
    if (this.now() < this.downUntil) {
      throw this.unavailable(`backing off after ${this.failures} failed requests`);
    }
    const scope = `repository:${repo}:pull`;
    try {
      let res = await this.fetch(method, this.config.url + path, { ...headers, ...this.authorization(scope) });
      if (res.status === 401) {
        const challenge = res.headers.get('www-authenticate') ?? '';
        await res.discard();
        const auth = await this.authenticate(challenge, scope);
        if (auth) res = await this.fetch(method, this.config.url + path, { ...headers, authorization: auth });
      }
      if (res.status >= 500 || res.status === 429) {
        await res.discard();
        throw this.unavailable(`HTTP ${res.status}`);
      }
      this.failures = 0;
      return res;
    } catch (err) {
      if (err instanceof RegistryError && err.code !== 'UNAVAILABLE') throw err;
      this.failed();
      throw err instanceof RegistryError ? err : this.unavailable(describe(err));
    }
  }

  /** Counts a failure of a request or of a response body (`UpstreamResponse.body`). */
  failed(): void {
    this.failures++;
    if (this.failures >= FAILURES_BEFORE_BACKOFF) {
      const pause = Math.min(BACKOFF_BASE_MS * 2 ** (this.failures - FAILURES_BEFORE_BACKOFF), BACKOFF_MAX_MS);
      this.downUntil = this.now() + pause;
    }
  }

  private authorization(scope: string): Record<string, string> {
    const token = this.tokens.get(scope);
    if (token && token.expires > this.now()) return { authorization: token.header };
    if (this.basic && this.config.username !== '') return { authorization: this.basicHeader() };
    return {};
  }

  private basicHeader(): string {
    return `Basic ${Buffer.from(`${this.config.username}:${this.config.password}`).toString('base64')}`;
  }

  /** Answers a 401 challenge; undefined when there is no way to authenticate. */
  private async authenticate(challenge: string, scope: string): Promise<string | undefined> {
    if (/^basic\b/i.test(challenge)) {
      if (this.config.username === '') throw oci('UNAUTHORIZED', `upstream "${this.name}" wants credentials and none are configured`);
      this.basic = true;
      return this.basicHeader();
    }
    if (!/^bearer\b/i.test(challenge)) return undefined;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    if (!params.realm) throw this.unavailable('Bearer challenge without a realm');
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (this.config.username !== '') headers.authorization = this.basicHeader();
    const res = await this.fetch('GET', url.toString(), headers);
    if (res.status !== 200) {
      await res.discard();
      if (res.status === 401 || res.status === 403) {
        throw oci('UNAUTHORIZED', `upstream "${this.name}" refused a token for ${scope} (HTTP ${res.status})`);
      }
      throw this.unavailable(`token server answered HTTP ${res.status}`);
    }
    const body = JSON.parse((await res.text(1024 * 1024)).toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw this.unavailable('token server answered without a token');
    const header = `Bearer ${token}`;
    // The spec's default lifetime is 60 seconds.
    const lifetime = (body.expires_in ?? 60) * 1000;
    this.tokens.set(scope, { header, expires: this.now() + Math.max(lifetime - TOKEN_MARGIN_MS, lifetime / 2) });
    return header;
  }

  private async fetch(method: string, url: string, headers: Record<string, string>): Promise<UpstreamResponse> {
    const controller = new AbortController();
    const timeout = this.config.timeout;
    let timer = setTimeout(() => controller.abort(), timeout);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), timeout);
    };
    const settle = () => {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    };
    this.inFlight.add(controller);
    let res: Response;
    try {
      res = await fetch(url, { method, headers: { ...headers, 'user-agent': USER_AGENT }, redirect: 'follow', signal: controller.signal });
    } catch (err) {
      settle();
      throw controller.signal.aborted ? new Error(`no response within ${timeout} ms`) : err;
    }
    arm();
    const body = res.body;
    if (!body) settle();
    const stream = async function* () {
      try {
        if (!body) return;
        for await (const chunk of body) {
          arm();
          yield chunk;
        }
      } catch (err) {
        throw controller.signal.aborted ? new Error(`no data for ${timeout} ms (or shutting down)`) : err;
      } finally {
        settle();
      }
    };
    return {
      status: res.status,
      headers: res.headers,
      body: stream,
      async text(limit: number) {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of stream()) {
          size += chunk.length;
          if (size > limit) {
            controller.abort();
            throw oci('SIZE_INVALID', `upstream response exceeds ${limit} bytes`, { limit }, { status: 502 });
          }
          chunks.push(Buffer.from(chunk));
        }
        return Buffer.concat(chunks, size);
      },
      async discard() {
        settle();
        await body?.cancel().catch(() => undefined);
      },
    };
  }
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
