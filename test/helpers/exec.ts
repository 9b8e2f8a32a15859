import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Extra environment variables, merged over process.env. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the child's stdin (stdin is closed right away otherwise). */
  input?: string | Buffer;
  /** The child is killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

export interface RunResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Raw stdout bytes (use this when the output must be compared byte for byte). */
  stdoutBuf: Buffer;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(readonly result: RunResult) {
    const how = result.signal ? `signal ${result.signal}` : `exit code ${result.code}`;
    const tail = (s: string) => (s.length > 8000 ? `…${s.slice(-8000)}` : s);
    super(
      `command failed (${how}): ${result.command}\n--- stderr ---\n${tail(result.stderr)}` +
        (result.stdout.trim() ? `\n--- stdout ---\n${tail(result.stdout)}` : ''),
    );
    this.name = 'CommandError';
  }
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `cmd args…` without a shell and captures its output. Never throws for a non-zero exit:
 * look at `code`. Rejects only when the command cannot be started.
 */
export function tryRun(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].map(quote).join(' ');
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBuf = Buffer.concat(out);
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) stderr += `\n[killed after ${timeoutMs} ms timeout]`;
      resolve({ command, code, signal, stdoutBuf, stdout: stdoutBuf.toString('utf8'), stderr });
    });
    child.stdin.on('error', () => {
      /* the child may exit before reading its input */
    });
    child.stdin.end(options.input ?? undefined);
  });
}

/** Like tryRun, but throws a CommandError (carrying stderr) unless the command exits 0. */
export async function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await tryRun(cmd, args, options);
  if (result.code !== 0) throw new CommandError(result);
  return result;
}

/** Runs a command that is expected to fail; throws if it exits 0. */
export async function runExpectFailure(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await tryRun(cmd, args, options);
  if (result.code === 0) {
    throw new Error(`command unexpectedly succeeded: ${result.command}\n--- stdout ---\n${result.stdout}`);
  }
  return result;
}

/**
 * Environment for container clients: any attempt to reach something other than loopback
 * through a proxy fails at once (nothing listens on port 9), loopback is reached directly.
 */
export const offlineEnv: NodeJS.ProcessEnv = {
  HTTP_PROXY: 'http://127.0.0.1:9',
  HTTPS_PROXY: 'http://127.0.0.1:9',
  http_proxy: 'http://127.0.0.1:9',
  https_proxy: 'http://127.0.0.1:9',
  NO_PROXY: '127.0.0.1,localhost',
  no_proxy: '127.0.0.1,localhost',
};
