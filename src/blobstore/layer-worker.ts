import type { LayerReply, LayerRequest } from './layer-thread.js';

/**
 * The layer thread's program: computes what a blob holds once uncompressed (its
 * uncompressed digest and size). It runs from its source text (`eval`), so it may use
 * only what it requires itself; `zstdBinding` is the absolute path of zstd-napi's native
 * binding, resolved by the main thread.
 *
 * A job reads its file from the start, following it while an upload still writes it
 * (a read at the end of the file waits for more, or for `end` with the final size), and
 * feeds the bytes through gunzip (node:zlib) or a zstd decoder (libzstd, which checks
 * frame checksums) into SHA-256. Reading the file rather than taking the upload's bytes
 * keeps memory flat however far the decompression lags behind the upload. Jobs take turns
 * on one lane: one decompresses at a time (at most one core, so uploads on a small
 * machine keep the rest), yields the lane every few MiB to the jobs waiting for it, and
 * while it waits for an upload's next bytes. Any decoding error makes the blob "not a
 * valid layer"; the thread itself never fails on bad input.
 */
export function layerWorker(zstdBinding: string): void {
  const { open } = require('node:fs/promises') as typeof import('node:fs/promises');
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const { createGunzip } = require('node:zlib') as typeof import('node:zlib');
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const zstd = require(zstdBinding) as {
    DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number] };
  };
  const port = parentPort!;
  const READ = 1024 * 1024;
  /**
   * How long a read at the end of a file still being written waits before looking again,
   * doubling while nothing comes (a client may pause a chunked upload for hours).
   */
  const POLL_MS = 20;
  const MAX_POLL_MS = 1000;
  /** Beyond this many bytes of output per byte of input (and 1 GiB), a blob is not decompressed further. */
  const MAX_RATIO = 200;
  const MIN_LIMIT = 1024 * 1024 * 1024;

  interface Job {
    id: number;
    path: string;
    /** 'sniff': a complete file whose format is not known yet. */
    format: 'gzip' | 'zstd' | 'sniff';
    /** The file's final size, once known. */
    end: number | undefined;
    /** Where the file is once complete (an upload's file is renamed into the store). */
    finalPath: string | undefined;
    cancelled: boolean;
    wake: (() => void) | undefined;
  }

  const jobs = new Map<number, Job>();

  // The lane: whoever holds it may decompress; the others wait in order.
  const waiting: Array<() => void> = [];
  let laneBusy = false;
  const acquire = (): Promise<void> => {
    if (!laneBusy) {
      laneBusy = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else laneBusy = false;
  };
  /** Input bytes a job decompresses before it lets a waiting job have a turn. */
  const TURN = 8 * READ;

  type Result = Omit<LayerReply, 'job'>;

  class TooLarge extends Error {}

  /**
   * The file's bytes from the start, as they arrive, until `job.end`. The consumer
   * decompresses each chunk while this holds the lane (between its yields).
   */
  async function* bytesOf(job: Job): AsyncGenerator<Uint8Array> {
    let holding = false;
    const take = async () => {
      await acquire();
      holding = true;
    };
    const give = () => {
      if (holding) release();
      holding = false;
    };
    await take();
    const file = await openJob(job).catch((err: unknown) => {
      give();
      throw err;
    });
    try {
      let position = 0;
      let turn = 0;
      let poll = POLL_MS;
      for (;;) {
        if (job.cancelled) return;
        if (job.end !== undefined && position >= job.end) return;
        if (turn >= TURN && waiting.length > 0) {
          give();
          await take();
          turn = 0;
        }
        const wanted = job.end === undefined ? READ : Math.min(READ, job.end - position);
        const buffer = Buffer.allocUnsafe(wanted);
        const { bytesRead } = await file.read(buffer, 0, wanted, position);
        if (bytesRead === 0) {
          if (job.end !== undefined && position >= job.end) return; // ended while this read
          if (job.end !== undefined) throw new Error(`the file ended at ${position} of ${job.end} bytes`);
          give();
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, poll);
            job.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          job.wake = undefined;
          poll = Math.min(2 * poll, MAX_POLL_MS);
          await take();
          continue;
        }
        poll = POLL_MS;
        position += bytesRead;
        turn += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      give();
      await file.close();
    }
  }

  /** Opens the job's file, or its final path when it was renamed there before this got to it. */
  async function openJob(job: Job): Promise<import('node:fs/promises').FileHandle> {
    for (;;) {
      try {
        return await open(job.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || job.cancelled) throw err;
        if (job.finalPath !== undefined) return open(job.finalPath, 'r');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, POLL_MS);
          job.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        job.wake = undefined;
      }
    }
  }

  async function gunzip(source: AsyncIterable<Uint8Array>, output: (bytes: Uint8Array) => void): Promise<void> {
    const inflate = createGunzip({ chunkSize: 256 * 1024 });
    const ended = new Promise<void>((resolve, reject) => {
      inflate.on('data', (bytes: Buffer) => {
        try {
          output(bytes);
        } catch (err) {
          inflate.destroy(err as Error);
        }
      });
      inflate.once('end', resolve);
      inflate.once('error', reject);
    });
    ended.catch(() => {}); // observed below
    try {
      for await (const chunk of source) {
        if (!inflate.write(chunk)) {
          await Promise.race([new Promise((resolve) => inflate.once('drain', resolve)), ended]);
        }
      }
      inflate.end();
      await ended;
    } finally {
      inflate.destroy();
    }
  }

  async function unzstd(source: AsyncIterable<Uint8Array>, output: (bytes: Uint8Array) => void): Promise<void> {
    const dctx = new zstd.DCtx();
    const out = Buffer.allocUnsafe(READ);
    // Non-zero while a frame is unfinished (libzstd's hint of the input it still needs).
    let pending = 0;
    for await (const chunk of source) {
      let input = chunk;
      for (;;) {
        const [hint, produced, consumed] = dctx.decompressStream(out, input);
        if (produced > 0) output(out.subarray(0, produced));
        input = input.subarray(consumed);
        pending = hint;
        // Done with this chunk once it is used up and the output was not full (nothing left to flush).
        if (input.length === 0 && produced < out.length) break;
      }
    }
    if (pending !== 0) throw new Error('the zstd stream ends in the middle of a frame');
  }

  async function compute(job: Job): Promise<Result> {
    const source = bytesOf(job);
    let format = job.format;
    let first: Uint8Array | undefined;
    if (format === 'sniff') {
      const head = await source.next();
      first = head.done ? new Uint8Array(0) : head.value;
      format = sniff(first);
      if (format === 'sniff') {
        await source.return(undefined);
        return { format: 'none' };
      }
    }
    const hash = createHash('sha256');
    let size = 0;
    const output = (bytes: Uint8Array) => {
      size += bytes.length;
      // A file still being written is judged by its final size, once known.
      if (size > Math.max(MIN_LIMIT, MAX_RATIO * (job.end ?? Infinity))) throw new TooLarge();
      hash.update(bytes);
    };
    async function* all(): AsyncGenerator<Uint8Array> {
      try {
        if (first) yield first;
        yield* source;
      } finally {
        await source.return(undefined); // gives the lane back when decoding stops at the first chunk
      }
    }
    try {
      await (format === 'gzip' ? gunzip(all(), output) : unzstd(all(), output));
    } catch (err) {
      if (job.cancelled) return { format, cancelled: true };
      if (err instanceof TooLarge) {
        return { format, error: `it uncompresses to more than ${MAX_RATIO} times its size; not checked` };
      }
      return { format: 'invalid', error: `not a valid ${format} stream: ${(err as Error).message}` };
    }
    if (job.cancelled) return { format, cancelled: true };
    return { format, digest: `sha256:${hash.digest('hex')}`, size };
  }

  function sniff(head: Uint8Array): 'gzip' | 'zstd' | 'sniff' {
    if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
    if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
    return 'sniff';
  }

  async function run(job: Job): Promise<void> {
    let result: Result;
    try {
      result = await compute(job);
    } catch (err) {
      // The file could not be opened or read: said as such, the caller decides.
      result = { format: 'invalid', failed: String((err as Error)?.message ?? err) };
    }
    jobs.delete(job.id);
    port.postMessage({ job: job.id, ...result } satisfies LayerReply);
  }

  port.on('message', (messages: LayerRequest[]) => {
    for (const message of messages) {
      switch (message.op) {
        case 'follow':
        case 'inspect': {
          const job: Job = {
            id: message.job,
            path: message.path,
            format: message.op === 'follow' ? message.format : 'sniff',
            end: message.op === 'inspect' ? message.size : undefined,
            finalPath: undefined,
            cancelled: false,
            wake: undefined,
          };
          jobs.set(job.id, job);
          void run(job);
          break;
        }
        case 'end': {
          const job = jobs.get(message.job);
          if (job) {
            job.end = message.size;
            job.finalPath = message.path;
            job.wake?.();
          }
          break;
        }
        case 'cancel': {
          const job = jobs.get(message.job);
          if (job) {
            job.cancelled = true;
            job.wake?.();
          }
          break;
        }
      }
    }
  });
}
