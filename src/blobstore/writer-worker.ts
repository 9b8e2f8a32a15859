import type { WriterReply, WriterRequest } from './writer-thread.js';

/**
 * The writer thread's program. It runs from its source text (`eval`), so it may use
 * only what it requires itself: nothing from the enclosing module.
 *
 * It keeps the running hashes (by id) and the open files (by job id). A job's steps run
 * in order on the job's own chain; jobs run concurrently, their writes and syncs on
 * libuv's thread pool. With `durable`, a file is fdatasync'ed in the background every
 * 4 MiB, so the disk writes back while the network delivers instead of flushing the
 * whole blob at the end; at most two such syncs run at once, so that many uploads' syncs
 * leave at least half of the pool's four threads to the writes (the final sync covers a
 * skipped one).
 */
export function writerWorker(): void {
  const { createReadStream } = require('node:fs') as typeof import('node:fs');
  const { open } = require('node:fs/promises') as typeof import('node:fs/promises');
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const port = parentPort!;
  const SYNC_EVERY = 4 * 1024 * 1024;
  const MAX_BACKGROUND_SYNCS = 2;
  let backgroundSyncs = 0;

  interface Job {
    file: Promise<import('node:fs/promises').FileHandle>;
    hash: number;
    durable: boolean;
    unsynced: number;
    syncing: Promise<void> | undefined;
    tail: Promise<unknown>;
  }
  const hashes = new Map<number, import('node:crypto').Hash>();
  const jobs = new Map<number, Job>();

  const runningHash = (id: number) => {
    const hash = hashes.get(id);
    if (!hash) throw new Error(`writer thread: unknown hash ${id}`);
    return hash;
  };
  const openJob = (id: number) => {
    const job = jobs.get(id);
    if (!job) throw new Error(`writer thread: unknown job ${id}`);
    return job;
  };

  async function writeAll(job: Job, parts: Uint8Array[]): Promise<number> {
    const hash = runningHash(job.hash);
    let size = 0;
    for (const part of parts) {
      hash.update(part);
      size += part.length;
    }
    const file = await job.file;
    let written = (await file.writev(parts)).bytesWritten;
    // A regular file takes whole writes, but a short one must not lose the rest.
    for (const part of parts) {
      for (let at = written; at < part.length; ) at += (await file.write(part, at, part.length - at, null)).bytesWritten;
      written = Math.max(0, written - part.length);
    }
    job.unsynced += size;
    if (job.durable && job.unsynced >= SYNC_EVERY && job.syncing === undefined && backgroundSyncs < MAX_BACKGROUND_SYNCS) {
      job.unsynced = 0;
      backgroundSyncs++;
      const done = () => {
        backgroundSyncs--;
        job.syncing = undefined;
      };
      // Errors surface in the final sync before the blob is published.
      job.syncing = file.datasync().then(done, done);
    }
    return size;
  }

  async function finish(job: Job, sync: boolean, failed: boolean): Promise<void> {
    let file: import('node:fs/promises').FileHandle;
    try {
      file = await job.file;
    } catch (err) {
      if (failed) return; // the open failed; its error is already the job's
      throw err;
    }
    if (sync && !failed) {
      try {
        await job.syncing;
        await file.datasync();
      } finally {
        await file.close();
      }
    } else if (job.syncing) {
      // A background flush of a middle chunk need not hold up the reply: the file closes
      // when it is done, and the data is synced again before it is ever published.
      void job.syncing.then(() => file.close()).catch(() => {});
    } else {
      await file.close();
    }
  }

  function digest(id: number): string {
    const hex = runningHash(id).digest('hex');
    hashes.delete(id);
    return hex;
  }

  async function hashFile(hash: number, path: string): Promise<number> {
    const running = runningHash(hash);
    let size = 0;
    // 1 MiB reads, as READ_CHUNK elsewhere (this program cannot import it).
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      running.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return size;
  }

  function handle(message: WriterRequest): Promise<number | string | void> | undefined {
    switch (message.op) {
      case 'hash':
        hashes.set(message.hash, createHash(message.algorithm));
        return undefined;
      case 'drop':
        hashes.delete(message.hash);
        return undefined;
      case 'digest':
        return Promise.resolve(digest(message.hash));
      case 'hashFile':
        return hashFile(message.hash, message.path);
      case 'open': {
        const file = open(message.path, message.flags);
        file.catch(() => {}); // reported by the job's next step
        jobs.set(message.job, { file, hash: message.hash, durable: message.durable, unsynced: 0, syncing: undefined, tail: file });
        return undefined;
      }
      case 'write': {
        const job = openJob(message.job);
        const step = job.tail.then(() => writeAll(job, message.parts.map((part) => new Uint8Array(part))));
        job.tail = step;
        return step;
      }
      case 'close': {
        const job = openJob(message.job);
        jobs.delete(message.job);
        const closed = job.tail.then(
          () => finish(job, message.sync, false),
          async (err: unknown) => {
            await finish(job, false, true);
            throw err;
          },
        );
        if (!message.digest) return closed;
        return closed.then(
          () => digest(job.hash),
          (err: unknown) => {
            hashes.delete(job.hash);
            throw err;
          },
        );
      }
    }
  }

  // Replies settled during one turn of the event loop go back as one message.
  let outbox: WriterReply[] = [];
  const reply = (message: WriterReply) => {
    if (outbox.length === 0) {
      setImmediate(() => {
        port.postMessage(outbox);
        outbox = [];
      });
    }
    outbox.push(message);
  };

  port.on('message', (messages: WriterRequest[]) => {
    for (const message of messages) {
      let result: ReturnType<typeof handle>;
      try {
        result = handle(message);
      } catch (err) {
        result = Promise.reject(err);
      }
      if (!('call' in message)) continue;
      result!.then(
        (value) => reply({ call: message.call, value: value ?? undefined }),
        (err: NodeJS.ErrnoException) => reply({ call: message.call, error: { message: String(err?.message ?? err), code: err?.code } }),
      );
    }
  });
}
