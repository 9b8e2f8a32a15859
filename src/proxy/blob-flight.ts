import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createDigester, type Digest } from '../digest.js';
import { READ_CHUNK } from '../blobstore/files.js';
import type { RegistryError } from '../errors.js';

export interface FlightSink {
  /** Where the bytes are staged. */
  tempPath(id: string): string;
  /** Makes the verified file at `path` the blob; the file is consumed. */
  commit(path: string, size: number): Promise<void>;
}

/**
 * One upstream download of a blob, shared by every client that asks for it meanwhile.
 * Bytes are written to a temp file and hashed as they arrive; readers follow the file
 * one chunk behind the writer, and the last chunk is released only once the digest
 * verified. A corrupt or truncated download therefore never completes for any reader,
 * and nothing is committed. Memory stays flat: readers read from the file.
 */
export class BlobFlight {
  /** Settles once the blob is committed, or with the reason it was not. */
  done: Promise<void> = Promise.resolve();
  private written = 0;
  /** Bytes readers may have: all but the latest chunk until verified. */
  private released = 0;
  private verified = false;
  private error: Error | undefined;
  private settled = false;
  private readers = 0;
  private readHandle: FileHandle | undefined;
  private readonly events = new EventEmitter();

  /** `size` is the upstream's Content-Length, when it sent one. */
  constructor(
    readonly digest: Digest,
    public size: number | undefined,
    private readonly sink: FlightSink,
  ) {
    this.events.setMaxListeners(0);
  }

  /**
   * Starts receiving `body` into the store. `done` resolves once the blob is committed and
   * rejects (after failing every reader) on an upstream failure or a digest mismatch.
   */
  start(body: AsyncIterable<Uint8Array>, onFailure: (err: Error) => RegistryError | Error): void {
    this.done = this.run(body, onFailure);
  }

  private async run(body: AsyncIterable<Uint8Array>, onFailure: (err: Error) => RegistryError | Error): Promise<void> {
    const temp = this.sink.tempPath(randomUUID());
    let failure: Error | undefined;
    try {
      const write = await open(temp, 'w');
      try {
        this.readHandle = await open(temp, 'r');
        const hash = createDigester(this.digest.algorithm);
        try {
          for await (const chunk of body) {
            await write.write(chunk);
            hash.update(chunk);
            this.released = this.written;
            this.written += chunk.length;
            this.events.emit('progress');
          }
        } catch (err) {
          throw onFailure(err as Error);
        }
        const actual = `${this.digest.algorithm}:${hash.digest('hex')}`;
        if (actual !== this.digest.value || (this.size !== undefined && this.size !== this.written)) {
          throw new Error(`the upstream sent ${this.written} bytes hashing to ${actual}, not ${this.digest.value}`);
        }
      } finally {
        await write.close();
      }
      this.size = this.written;
      this.verified = true;
      this.released = this.written;
      this.events.emit('progress');
      await this.sink.commit(temp, this.written);
    } catch (err) {
      failure = err as Error;
      await rm(temp, { force: true });
      throw err;
    } finally {
      // Readers learn of a failure only once nothing of the download is left.
      this.error = failure;
      this.settled = true;
      this.events.emit('progress');
      this.release();
    }
  }

  /**
   * A stream of the blob's bytes for one client; it errors if the download fails.
   * Undefined once the flight is over: the blob is then in the store, or not at all.
   */
  reader(): Readable | undefined {
    if (this.settled) return undefined;
    this.readers++;
    let position = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.readers--;
      this.release();
    };
    const next = async (): Promise<Buffer | null> => {
      for (;;) {
        if (this.error) throw this.error;
        if (position < this.released) {
          const length = Math.min(READ_CHUNK, this.released - position);
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await this.readHandle!.read(buffer, 0, length, position);
          position += bytesRead;
          return buffer.subarray(0, bytesRead);
        }
        if (this.verified) return null;
        await once(this.events, 'progress');
      }
    };
    const stream: Readable = new Readable({
      highWaterMark: READ_CHUNK,
      read: () => {
        next().then(
          (chunk) => {
            if (chunk === null) finish();
            stream.push(chunk);
          },
          (err: Error) => stream.destroy(err),
        );
      },
      destroy: (err, callback) => {
        finish();
        callback(err);
      },
    });
    return stream;
  }

  /** Closes the read handle once the download is over and no reader needs it. */
  private release(): void {
    if (this.settled && this.readers === 0 && this.readHandle) {
      const handle = this.readHandle;
      this.readHandle = undefined;
      void handle.close().catch(() => undefined);
    }
  }
}
