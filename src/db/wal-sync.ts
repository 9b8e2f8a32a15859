import { closeSync, fdatasync, openSync } from 'node:fs';

/**
 * Group commit for a WAL-mode SQLite database written with synchronous=NORMAL:
 * `flush()` resolves once an fdatasync of the WAL file that started after the call
 * has finished, so every commit made before the call is durable. Syncs run on the
 * thread pool; callers arriving while one runs share the next one.
 */
export class WalSync {
  private fd: number | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly path: string) {}

  flush(): Promise<void> {
    if (this.running === undefined) return (this.running = this.sync());
    // The running sync may have started before the caller's commit: wait for the next.
    this.next ??= this.running.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.next;
  }

  private startNext(): Promise<void> {
    this.next = undefined;
    return (this.running = this.sync());
  }

  private async sync(): Promise<void> {
    try {
      // The WAL file exists from the first commit and is reused, never replaced, while
      // connections are open (checkpoints rewrite it from the start).
      this.fd ??= openSync(this.path, 'r');
      const fd = this.fd;
      await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    } finally {
      this.running = undefined;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
