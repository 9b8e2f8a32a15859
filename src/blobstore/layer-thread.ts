import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { layerWorker } from './layer-worker.js';

/** How a blob's bytes are compressed, as far as its content shows: what a client decompressing it would do. */
export type LayerFormat = 'gzip' | 'zstd' | 'none' | 'invalid';

export type LayerRequest =
  | { op: 'follow'; job: number; path: string; format: 'gzip' | 'zstd' }
  | { op: 'inspect'; job: number; path: string; size: number }
  | { op: 'end'; job: number; size: number; path: string }
  | { op: 'cancel'; job: number };

export interface LayerReply {
  job: number;
  format: LayerFormat;
  /** The uncompressed digest and size, when computed. */
  digest?: string;
  size?: number;
  /** Why the bytes are not a valid layer, or why they were not checked. */
  error?: string;
  cancelled?: boolean;
  /** The file could not be read (removed meanwhile): nothing is known. */
  failed?: string;
}

/** What a blob holds, uncompressed; `digest` is undefined when it could not be computed (see `error`). */
export interface LayerContents {
  format: LayerFormat;
  digest: string | undefined;
  size: number | undefined;
  error: string | undefined;
}

const zstdBinding = createRequire(import.meta.url).resolve('zstd-napi/binding');

/**
 * Decompression and hashing of layers on a worker thread of their own (see layer-worker.ts),
 * beside the writer thread that stores uploads: decompressing gzip costs several times
 * what receiving the compressed bytes does, so it must neither hold up the writes nor the
 * event loop. The thread starts on first use and keeps the process alive only while a
 * job is waiting. If it dies, its jobs fail (their callers fall back to computing again)
 * and the next job starts a new thread.
 */
export class LayerThread {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, { resolve(reply: LayerReply): void; reject(err: Error): void }>();
  private nextId = 1;
  private outbox: LayerRequest[] = [];
  private stopped = false;

  /**
   * Decompresses `path` (gzip or zstd, as its first bytes said) while an upload still
   * writes it; `end` tells the final size. Returns the job's id and its result.
   */
  follow(path: string, format: 'gzip' | 'zstd'): { job: number; result: Promise<LayerContents> } {
    const job = this.nextId++;
    return { job, result: this.start({ op: 'follow', job, path, format }) };
  }

  /** What the complete file `path` of `size` bytes holds. */
  inspect(path: string, size: number): Promise<LayerContents> {
    return this.start({ op: 'inspect', job: this.nextId++, path, size });
  }

  /** The followed file is complete at `size` bytes, and will be at `path` (where it is renamed). */
  end(job: number, size: number, path: string): void {
    if (this.jobs.has(job)) this.post({ op: 'end', job, size, path });
  }

  /** Stops a job; its result rejects. */
  cancel(job: number): void {
    if (this.jobs.has(job)) this.post({ op: 'cancel', job });
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    if (!worker) return;
    this.fail(worker, new Error('layer thread stopped'));
    await worker.terminate();
  }

  private start(request: Extract<LayerRequest, { op: 'follow' | 'inspect' }>): Promise<LayerContents> {
    if (this.stopped) return Promise.reject(new Error('layer thread stopped'));
    const reply = new Promise<LayerReply>((resolve, reject) => {
      this.jobs.set(request.job, { resolve, reject });
      if (this.jobs.size === 1) this.thread().ref();
      this.post(request);
    });
    return reply.then((r) => {
      if (r.cancelled) throw new Error('cancelled');
      if (r.failed !== undefined) throw new Error(r.failed);
      return { format: r.format, digest: r.digest, size: r.size, error: r.error };
    });
  }

  private post(request: LayerRequest): void {
    if (this.outbox.length === 0) setImmediate(() => this.flush());
    this.outbox.push(request);
  }

  private flush(): void {
    const requests = this.outbox;
    this.outbox = [];
    if (!this.stopped && requests.length > 0) this.thread().postMessage(requests);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(`(${layerWorker.toString()})(${JSON.stringify(zstdBinding)})`, { eval: true });
    worker.unref();
    worker.on('message', (reply: LayerReply) => {
      const job = this.jobs.get(reply.job);
      if (!job) return;
      this.jobs.delete(reply.job);
      if (this.jobs.size === 0) this.worker?.unref();
      job.resolve(reply);
    });
    worker.on('error', (err) => this.fail(worker, err));
    worker.on('exit', (code) => this.fail(worker, new Error(`layer thread exited with code ${code}`)));
    return (this.worker = worker);
  }

  private fail(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) job.reject(err);
  }
}
