import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { READ_CHUNK } from './files.js';
import type { WriterThread } from './writer-thread.js';

/**
 * Streams `body` into `path` (appending or creating) through the writer thread, which
 * feeds every byte to the running hash `hash` and writes it; each write is reported to
 * `written` as it lands. Returns the number of bytes written and, with `digest`, the
 * hash's hex digest (the hash is then used up). Memory stays flat whatever the size: up
 * to READ_CHUNK waits here while the thread writes the previous batch, and backpressure
 * flows from the file to the socket. With `durable` and `final` (the blob's last bytes)
 * the file is fdatasync'ed before returning. `started` is told the first bytes (up to
 * HEAD_BYTES) once they are in the file, so that a reader may follow it.
 */
export async function receiveInto(
  writer: WriterThread,
  body: Readable,
  path: string,
  hash: number,
  options: {
    flags: 'a' | 'w';
    durable: boolean;
    final: boolean;
    digest?: boolean;
    written?: (bytes: number) => void;
    started?: (head: Buffer) => void;
  },
): Promise<{ bytes: number; digest: string | undefined }> {
  const job = writer.open(path, options.flags, hash, options.durable);
  let bytes = 0;
  let started = options.started;
  const send = (parts: Buffer[], callback: (err?: Error | null) => void) => {
    // Copied before the write moves the parts' memory to the writer thread.
    const head = started && Buffer.concat(parts.map((p) => p.subarray(0, HEAD_BYTES))).subarray(0, HEAD_BYTES);
    writer.write(job, parts).then((written) => {
      bytes += written;
      options.written?.(written);
      if (head && started) {
        started(head);
        started = undefined;
      }
      callback();
    }, callback);
  };
  const sink = new Writable({
    highWaterMark: READ_CHUNK,
    write: (chunk: Buffer, _encoding, callback) => send([chunk], callback),
    writev: (chunks, callback) => send(chunks.map((c) => c.chunk as Buffer), callback),
  });
  try {
    await pipeline(body, sink);
  } catch (err) {
    await writer.close(job, false).catch(() => {});
    throw err;
  }
  const digest = await writer.close(job, options.durable && options.final, options.digest ? hash : undefined);
  return { bytes, digest };
}

/** How many first bytes of an upload `started` is told: enough for any compression magic number. */
export const HEAD_BYTES = 8;
