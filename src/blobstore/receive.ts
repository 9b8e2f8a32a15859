import { createReadStream, createWriteStream } from 'node:fs';
import type { Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigester, type Algorithm } from '../digest.js';
import { READ_CHUNK } from './files.js';

/**
 * Streams `body` into `path` (appending or creating), feeding every byte to `hash`
 * as it passes. Returns the number of bytes written. Memory stays flat whatever
 * the size: backpressure flows from the file to the socket.
 */
export async function receiveInto(body: Readable, path: string, hash: Hash, flags: 'a' | 'w'): Promise<number> {
  let bytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  await pipeline(body, hasher, createWriteStream(path, { flags, highWaterMark: READ_CHUNK }));
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
