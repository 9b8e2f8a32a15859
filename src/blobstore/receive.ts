import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Hash } from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigester, type Algorithm } from '../digest.js';
import { READ_CHUNK } from './files.js';

/** With durability on, written data is flushed to disk every this many bytes while receiving. */
const SYNC_EVERY = 4 * 1024 * 1024;

/**
 * Streams `body` into `path` (appending or creating), feeding every byte to `hash`
 * as it passes, and reporting each write to `written` as it lands on disk. Returns the
 * number of bytes written. Memory stays flat whatever
 * the size: backpressure flows from the file to the socket.
 *
 * When `durable`, the file is fdatasync'ed in the background every SYNC_EVERY bytes,
 * so the disk writes back while the network delivers (also between chunks) instead of
 * flushing the whole blob at the end; with `final` (the blob's last bytes) it is synced
 * before returning.
 */
export async function receiveInto(
  body: Readable,
  path: string,
  hash: Hash,
  options: { flags: 'a' | 'w'; durable: boolean; final: boolean; written?: (bytes: number) => void },
): Promise<number> {
  const { flags, durable } = options;
  const handle = await open(path, flags);
  let bytes = 0;
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      unsynced += chunk.length;
      if (durable && unsynced >= SYNC_EVERY && syncing === undefined) {
        unsynced = 0;
        // Errors surface in the final fsync before the blob is published.
        syncing = handle.datasync().then(
          () => (syncing = undefined),
          () => (syncing = undefined),
        );
      }
      callback(null, chunk);
    },
  });
  try {
    const sink = new Writable({
      highWaterMark: READ_CHUNK,
      write(chunk: Buffer, _encoding, callback) {
        handle.write(chunk).then(({ bytesWritten }) => {
          options.written?.(bytesWritten);
          callback();
        }, callback);
      },
      writev(chunks, callback) {
        handle.writev(chunks.map((c) => c.chunk as Buffer)).then(({ bytesWritten }) => {
          options.written?.(bytesWritten);
          callback();
        }, callback);
      },
    });
    await pipeline(body, hasher, sink);
    if (durable && options.final) {
      // The last bytes of a blob: make them durable now, while the file is open.
      await syncing;
      await handle.datasync();
    }
  } finally {
    // A background flush of a middle chunk need not hold up the reply: the handle closes
    // when it is done, and the data is synced again before it is ever published.
    if (syncing) void syncing.then(() => handle.close()).catch(() => {});
    else await handle.close();
  }
  return bytes;
}

/** Hashes a whole file, e.g. an upload session resumed after a restart. */
export async function hashFile(path: string, algorithm: Algorithm): Promise<{ hash: Hash; size: number }> {
  const hash = createDigester(algorithm);
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash, size };
}
