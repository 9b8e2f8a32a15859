import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const BERTH_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export interface Registry {
  name: 'Distribution' | 'Berth';
  url: string;
  dataDir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitReady(url: string, child: ChildProcess, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${name} did not become ready`);
}

function stopper(child: ChildProcess, dataDir: string, keep: boolean) {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    if (!keep) await rm(dataDir, { recursive: true, force: true });
  };
}

/** Berth from dist/ (built by `npm run bench`), logging at warn, on a fresh data directory; `env` adds settings. */
export async function startBerth(dataDir?: string, env: Record<string, string> = {}): Promise<Registry> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'bench-berth-')));
  const port = await freePort();
  // BENCH_BERTH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles Berth during a run.
  const nodeArgs = process.env.BENCH_BERTH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, BERTH_CLI, 'serve'], {
    env: { ...process.env, BERTH_HTTP_ADDR: `127.0.0.1:${port}`, BERTH_STORAGE_ROOT: dir, BERTH_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child, 'Berth');
  return { name: 'Berth', url, dataDir: dir, child, stop: stopper(child, dir, dataDir !== undefined) };
}

/** CNCF Distribution with its usual configuration (in-memory blob descriptor cache), logging at warn. */
export async function startDistribution(dataDir?: string): Promise<Registry> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'bench-distribution-')));
  const port = await freePort();
  const configFile = join(dir, '..', `${dir.split('/').pop()}.yml`);
  await writeFile(
    configFile,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}`,
      '  delete:',
      '    enabled: true',
      '  cache:',
      '    blobdescriptor: inmemory',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', configFile], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child, 'Distribution');
  const stop = stopper(child, dir, dataDir !== undefined);
  return {
    name: 'Distribution',
    url,
    dataDir: dir,
    child,
    stop: async () => {
      await stop();
      await rm(configFile, { force: true });
    },
  };
}

export function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) / 1024;
}

/** Samples a process's RSS every 50 ms; `stop()` returns the peak in MiB. */
export function sampleRss(pid: number): { stop(): number } {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch {
      // process gone
    }
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}
