import { Worker } from 'node:worker_threads';
import type { Algorithm } from '../digest.js';
import { writerWorker } from './writer-worker.js';

export type WriterRequest =
  | { op: 'hash'; hash: number; algorithm: Algorithm }
  | { op: 'drop'; hash: number }
  | { op: 'digest'; call: number; hash: number }
  | { op: 'hashFile'; call: number; hash: number; path: string }
  | { op: 'open'; job: number; path: string; flags: 'a' | 'w'; hash: number; durable: boolean }
  | { op: 'write'; call: number; job: number; parts: ArrayBuffer[] }
  | { op: 'close'; call: number; job: number; sync: boolean; digest: boolean };

export interface WriterReply {
  call: number;
  value?: number | string;
  error?: { message: string; code?: string };
}

type Call = { resolve(value: unknown): void; reject(err: Error): void };
type Called<R> = R extends { call: number } ? Omit<R, 'call'> : never;

/**
 * Hashing and file writes on a worker thread, so the event loop only hands bytes over:
 * SHA-256 and the file system calls behind an upload cost the main thread about a third
 * of its time under many concurrent pushes. Running hashes live on the thread and are
 * named by ids; a file being written is a job. Requests made during one turn of the
 * event loop travel as one message, and so do the thread's replies: each message wakes
 * the other thread, which under load costs more than the work a small one carries.
 *
 * The thread starts on first use and keeps the process alive only while a reply is
 * awaited. If it ever dies, waiting calls fail, its hashes are gone (uploads rebuild
 * theirs from their files) and the next call starts a new one.
 */
export class WriterThread {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private outbox: WriterRequest[] = [];
  private transfer: ArrayBuffer[] = [];
  private stopped = false;
  /** Ids of the hashes the running thread holds. */
  private readonly hashes = new Set<number>();

  /** Starts a running hash; returns its id. */
  newHash(algorithm: Algorithm): number {
    const hash = this.nextId++;
    this.hashes.add(hash);
    this.post({ op: 'hash', hash, algorithm });
    return hash;
  }

  /** Whether a running hash still exists (it is lost if the thread dies). */
  holds(hash: number): boolean {
    return this.hashes.has(hash);
  }

  /** Forgets a running hash. */
  drop(hash: number): void {
    if (this.hashes.delete(hash)) this.post({ op: 'drop', hash });
  }

  /** The hash's hex digest; the hash is forgotten. */
  digest(hash: number): Promise<string> {
    this.hashes.delete(hash);
    return this.call({ op: 'digest', hash }) as Promise<string>;
  }

  /** Feeds a whole file into a running hash; returns the file's size. */
  hashFile(hash: number, path: string): Promise<number> {
    return this.call({ op: 'hashFile', hash, path }) as Promise<number>;
  }

  /** The hex digest and the size of a whole file. */
  async fileDigest(path: string, algorithm: Algorithm): Promise<{ hex: string; size: number }> {
    const hash = this.newHash(algorithm);
    try {
      const size = await this.hashFile(hash, path);
      return { hex: await this.digest(hash), size };
    } finally {
      this.drop(hash); // if the file could not be read
    }
  }

  /** Opens `path` for a job whose writes feed `hash`; returns the job's id. */
  open(path: string, flags: 'a' | 'w', hash: number, durable: boolean): number {
    const job = this.nextId++;
    this.post({ op: 'open', job, path, flags, hash, durable });
    return job;
  }

  /**
   * Hashes and appends `parts`; resolves with the bytes written. A part that owns all of
   * its memory (as the chunks of a request body do) moves to the thread and is left
   * empty here; any other is copied.
   */
  write(job: number, parts: Buffer[]): Promise<number> {
    const moved: ArrayBuffer[] = [];
    for (const part of parts) {
      const memory = part.buffer as ArrayBuffer;
      const owns = part.byteOffset === 0 && part.byteLength === memory.byteLength;
      if (owns && !moved.includes(memory) && !this.transfer.includes(memory)) {
        moved.push(memory);
      } else {
        const copy = Buffer.allocUnsafeSlow(part.length);
        part.copy(copy);
        moved.push(copy.buffer as ArrayBuffer);
      }
    }
    return this.call({ op: 'write', job, parts: moved }, moved) as Promise<number>;
  }

  /**
   * Ends a job: waits for its writes, fdatasyncs the file when `sync`, closes it. With
   * `digestOf` (the job's hash), resolves with that hash's hex digest in the same round
   * trip, and the hash is forgotten.
   */
  close(job: number, sync: boolean, digestOf?: number): Promise<string | undefined> {
    if (digestOf !== undefined) this.hashes.delete(digestOf);
    return this.call({ op: 'close', job, sync, digest: digestOf !== undefined }) as Promise<string | undefined>;
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    if (!worker) return;
    this.fail(worker, new Error('writer thread stopped'));
    await worker.terminate();
  }

  private call(request: Called<WriterRequest>, transfer?: ArrayBuffer[]): Promise<unknown> {
    if (this.stopped) return Promise.reject(new Error('writer thread stopped'));
    const call = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(call, { resolve, reject });
      if (this.calls.size === 1) this.thread().ref();
      this.post({ ...request, call } as WriterRequest, transfer);
    });
  }

  private post(request: WriterRequest, transfer: ArrayBuffer[] = []): void {
    if (this.outbox.length === 0) setImmediate(() => this.flush());
    this.outbox.push(request);
    this.transfer.push(...transfer);
  }

  private flush(): void {
    const requests = this.outbox;
    const transfer = this.transfer;
    this.outbox = [];
    this.transfer = [];
    if (!this.stopped) this.thread().postMessage(requests, transfer);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(`(${writerWorker.toString()})()`, { eval: true });
    worker.unref();
    worker.on('message', (replies: WriterReply[]) => {
      for (const reply of replies) this.settle(reply);
    });
    worker.on('error', (err) => this.fail(worker, err));
    worker.on('exit', (code) => this.fail(worker, new Error(`writer thread exited with code ${code}`)));
    return (this.worker = worker);
  }

  private settle(reply: WriterReply): void {
    const call = this.calls.get(reply.call);
    if (!call) return;
    this.calls.delete(reply.call);
    if (this.calls.size === 0) this.worker?.unref();
    if (reply.error) call.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
    else call.resolve(reply.value);
  }

  private fail(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.hashes.clear();
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) call.reject(err);
  }
}
