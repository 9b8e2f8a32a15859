import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface RegistryProcess {
  url: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** The 'berth is ready' log entry (port, storage, metricsPort with metrics.addr). */
  ready: Record<string, unknown>;
}

/**
 * Runs the built `berth serve` as a child process on a free loopback port, as an
 * operator would (the tests that kill it need a real process). `npm test` builds dist/ first.
 */
export async function spawnRegistry(
  dataDir: string,
  env: Record<string, string> = {},
  options: {
    /** Under this open-files limit (soft and hard), as `ulimit -n` sets it. */
    openFiles?: number;
    /** Run as this uid (and gid), as an unprivileged user would. */
    uid?: number;
  } = {},
): Promise<RegistryProcess> {
  let [command, args]: [string, string[]] = [process.execPath, [CLI, 'serve']];
  if (options.uid !== undefined) {
    [command, args] = ['setpriv', [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', command, ...args]];
  }
  if (options.openFiles !== undefined) {
    [command, args] = ['bash', ['-c', `ulimit -n ${options.openFiles} && exec "$0" "$@"`, command, ...args]];
  }
  const child = spawn(command, args, {
    env: { ...process.env, BERTH_HTTP_ADDR: '127.0.0.1:0', BERTH_STORAGE_ROOT: dataDir, BERTH_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    // Never leave a server behind that did not come up (or logs below info, hiding the line).
    const timeout = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth did not report ready within 120 s: ${stderr}`));
    }, 120_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'berth is ready' && entry.port) {
          clearTimeout(timeout);
          resolve(entry);
        }
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timeout);
      reject(new Error(`berth exited with ${code} before it was ready: ${stderr}`));
    });
  });
  return { url: `http://127.0.0.1:${ready.port as number}`, child, exited, ready };
}

export async function killHard(registry: RegistryProcess): Promise<void> {
  registry.child.kill('SIGKILL');
  await registry.exited;
}
