import type { FileHandle } from 'node:fs/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import { READ_CHUNK } from '../blobstore/files.js';

/**
 * Buffers reused by every download. A file stream allocates a fresh 1 MiB buffer per
 * chunk, and that much short-lived memory outside the JavaScript heap makes V8 run a
 * full collection every few dozen MiB: at GB/s, collections took more time than sending.
 */
const spare: Buffer[] = [];
const MAX_SPARE = 16;

function take(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
}

function give(buffer: Buffer): void {
  if (spare.length < MAX_SPARE) spare.push(buffer);
}

/**
 * Sends `length` bytes of `handle` from `start` as the body of the reply, whose status
 * and headers are already set: two buffers take turns, one read from the file while
 * the other is on its way to the socket, so a download holds 2 MiB whatever its size
 * and goes as fast as the client takes it. Closes the handle. A failure after the
 * headers went out can only cut the connection, which the client sees as a short body.
 */
export async function sendFile(reply: FastifyReply, handle: FileHandle, start: number, length: number): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  const buffers: [Buffer, Buffer] = [take(), take()];
  // Each buffer's write must finish before the buffer is read into again.
  const writes: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  let closed = false;
  const gone = new Promise<never>((_, reject) => {
    res.once('close', () => {
      closed = true;
      reject(new Error('the client went away'));
    });
  });
  gone.catch(() => {});
  try {
    res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
    let sent = 0;
    for (let turn: 0 | 1 = 0; sent < length; turn = turn === 0 ? 1 : 0) {
      await Promise.race([writes[turn], gone]);
      const buffer = buffers[turn];
      const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_CHUNK, length - sent), start + sent);
      if (bytesRead === 0) throw new Error('the blob file is shorter than its index entry');
      const write = new Promise<void>((resolve, reject) =>
        res.write(buffer.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve())),
      );
      // Awaited in a later turn, or never if the other write fails first.
      write.catch(() => {});
      writes[turn] = write;
      sent += bytesRead;
    }
    await Promise.race([Promise.all(writes), gone]);
    res.end();
    for (const buffer of buffers) give(buffer);
  } catch (err) {
    // Buffers that may still be on their way to a dead socket are not reused.
    if (!closed) reply.log.error({ err }, 'sending a blob failed');
    res.destroy();
  } finally {
    await handle.close();
  }
}
