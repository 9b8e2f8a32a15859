/**
 * A private Docker engine for end-to-end tests.
 *
 * `startDockerd()` runs `dockerd` (Debian package docker.io, 20.10) as a child process with
 * its own data-root, exec-root, pidfile, unix socket and daemon.json under a fresh temporary
 * directory, so it never touches a system Docker. It has no networking (`bridge: none`, no
 * iptables), and HTTP(S)_PROXY point at a dead loopback port with NO_PROXY=127.0.0.1,localhost,
 * so anything that is not the test registry on loopback fails at once instead of reaching out.
 *
 * dockerd starts its own containerd; its socket (`containerdSock`) serves `ctr`.
 *
 * `stop()` shuts dockerd down (SIGTERM, then SIGKILL), kills its containerd if it survived,
 * lazily unmounts anything left under the directory and removes it. Call it from afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Milliseconds before the child gets SIGKILL (default 120 s). */
  timeoutMs?: number;
  input?: string;
}

/** Runs a command without a shell and collects its output. Never throws on a non-zero exit. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like `run`, but rejects with the command line and its whole output when it does not exit 0. */
export async function runOk(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) {
    throw new Error(
      `\`${[cmd, ...args].join(' ')}\` exited with ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`,
    );
  }
  return r;
}

/**
 * The docker CLI to drive the engine with. Debian's docker.io installs /usr/bin/docker (20.10,
 * matching the engine); some machines also have a newer CLI earlier in PATH, so prefer Debian's
 * unless TEST_DOCKER_CLI says otherwise.
 */
export const DOCKER_CLI = process.env.TEST_DOCKER_CLI ?? (existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker');
export const DOCKERD_BIN = process.env.TEST_DOCKERD ?? 'dockerd';
export const CTR_BIN = process.env.TEST_CTR ?? 'ctr';

export interface DockerdOptions {
  /** host:port entries for daemon.json `insecure-registries` (loopback needs none; harmless). */
  insecureRegistries?: string[];
  /** URLs for daemon.json `registry-mirrors`, e.g. `http://127.0.0.1:PORT`. */
  registryMirrors?: string[];
  /** Milliseconds to wait for the API socket (default 60 s). */
  startTimeoutMs?: number;
}

export interface Dockerd {
  /** The temporary directory holding everything of this daemon. */
  root: string;
  /** Path of the API socket. */
  socket: string;
  /** `unix://…` for DOCKER_HOST. */
  host: string;
  /** containerd socket (for `ctr -a`). */
  containerdSock: string;
  /** Environment for client processes: DOCKER_HOST, a private DOCKER_CONFIG, DOCKER_BUILDKIT=0, dead proxies. */
  env: NodeJS.ProcessEnv;
  /** `docker …` with this daemon. */
  docker(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `docker …`, rejecting with the full output unless it exits 0. */
  dockerOk(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `ctr -a <containerdSock> -n <namespace> …`. */
  ctr(namespace: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `ctr …`, rejecting with the full output unless it exits 0. */
  ctrOk(namespace: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** The daemon's own log so far (stdout+stderr of dockerd, which includes containerd's). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** A loopback port nothing listens on: a proxy there refuses every connection at once. */
const DEAD_PROXY = 'http://127.0.0.1:9';

function proxyEnv(): NodeJS.ProcessEnv {
  return {
    HTTP_PROXY: DEAD_PROXY,
    HTTPS_PROXY: DEAD_PROXY,
    http_proxy: DEAD_PROXY,
    https_proxy: DEAD_PROXY,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

/** Mount points at or below `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(dir + '/')))
    // mountinfo escapes blanks as \040 and so on
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  if (process.getuid?.() !== 0) {
    throw new Error('dockerd e2e tests need root (dockerd manages mounts, overlayfs and cgroups)');
  }
  // Keep the path short: unix socket paths are limited to 108 bytes.
  const root = await mkdtemp(join(existsSync('/tmp') ? '/tmp' : tmpdir(), 'berth-dockerd-'));
  const dataRoot = join(root, 'data');
  const execRoot = join(root, 'exec');
  const socket = join(root, 'docker.sock');
  const pidfile = join(root, 'dockerd.pid');
  const configFile = join(root, 'daemon.json');
  const clientConfig = join(root, 'client');
  const logFile = join(root, 'dockerd.log');
  await mkdir(clientConfig, { recursive: true });
  await writeFile(
    configFile,
    JSON.stringify(
      {
        iptables: false,
        'ip-forward': false,
        'ip-masq': false,
        ip6tables: false,
        bridge: 'none',
        'insecure-registries': options.insecureRegistries ?? [],
        'registry-mirrors': options.registryMirrors ?? [],
        'log-level': 'info',
      },
      null,
      2,
    ),
  );

  const daemonEnv: NodeJS.ProcessEnv = { ...process.env, ...proxyEnv() };
  // A DOCKER_HOST or DOCKER_CONFIG of the surrounding shell must not leak into the daemon or the clients.
  delete daemonEnv.DOCKER_HOST;
  delete daemonEnv.DOCKER_CONTEXT;
  const clientEnv: NodeJS.ProcessEnv = {
    ...daemonEnv,
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: clientConfig,
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  };

  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      DOCKERD_BIN,
      [
        '--data-root', dataRoot,
        '--exec-root', execRoot,
        '--pidfile', pidfile,
        '-H', `unix://${socket}`,
        '--config-file', configFile,
      ],
      { env: daemonEnv, stdio: ['ignore', logFd, logFd] },
    );
  } finally {
    closeSync(logFd);
  }
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.on('error', (err) => (spawnError = err));
  const pid = child.pid;

  // If the test process dies without afterAll, do not leave a daemon behind.
  const onExit = () => {
    if (pid !== undefined && exited === undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  };
  process.once('exit', onExit);

  const readLog = () => readFile(logFile, 'utf8').catch(() => '');
  const containerdSock = join(execRoot, 'containerd', 'containerd.sock');

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    const containerdPid = Number.parseInt(
      (await readFile(join(execRoot, 'containerd', 'containerd.pid'), 'utf8').catch(() => '')).trim(),
      10,
    );
    if (pid !== undefined && exited === undefined) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      if (!(await waitForExit(pid, 20_000))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await waitForExit(pid, 5_000);
      }
    }
    // dockerd stops the containerd it started; if dockerd was killed, that containerd is orphaned.
    if (Number.isInteger(containerdPid) && containerdPid > 0 && isAlive(containerdPid)) {
      try {
        process.kill(containerdPid, 'SIGTERM');
      } catch {
        /* gone */
      }
      if (!(await waitForExit(containerdPid, 10_000))) {
        try {
          process.kill(containerdPid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const point of await mountsUnder(root)) {
      await run('umount', ['-l', point], { timeoutMs: 10_000 }).catch(() => undefined);
    }
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (spawnError !== undefined || exited !== undefined) {
      const log = await readLog();
      await stop();
      throw new Error(
        `dockerd did not start (${spawnError?.message ?? `exit ${exited?.code ?? exited?.signal}`}). ` +
          `Is docker.io installed and are we root?\n--- dockerd log ---\n${log.slice(-6000)}`,
      );
    }
    if ((await ping(socket)) && existsSync(containerdSock)) break;
    if (Date.now() > deadline) {
      const log = await readLog();
      await stop();
      throw new Error(`dockerd did not answer on ${socket} in time\n--- dockerd log ---\n${log.slice(-6000)}`);
    }
    await sleep(100);
  }

  /** On failure, add what the daemon logged meanwhile: it often names the registry request that went wrong. */
  const withDaemonLog = async (command: () => Promise<RunResult>): Promise<RunResult> => {
    const from = (await readLog()).length;
    try {
      return await command();
    } catch (err) {
      const lines = (await readLog())
        .slice(from)
        .split('\n')
        .filter((l) => l !== '' && !l.includes('module=grpc'))
        .slice(-40)
        .join('\n');
      if (err instanceof Error) err.message += `\n--- dockerd log meanwhile ---\n${lines}`;
      throw err;
    }
  };
  const docker = (args: readonly string[], o: RunOptions = {}) => run(DOCKER_CLI, args, { ...o, env: { ...clientEnv, ...o.env } });
  const dockerOk = (args: readonly string[], o: RunOptions = {}) =>
    withDaemonLog(() => runOk(DOCKER_CLI, args, { ...o, env: { ...clientEnv, ...o.env } }));
  const ctrArgs = (ns: string, args: readonly string[]) => ['-a', containerdSock, '-n', ns, ...args];
  const ctr = (ns: string, args: readonly string[], o: RunOptions = {}) =>
    run(CTR_BIN, ctrArgs(ns, args), { ...o, env: { ...clientEnv, ...o.env } });
  // ctr talks to the registry itself; the daemon log still helps when containerd is the one failing.
  const ctrOk = (ns: string, args: readonly string[], o: RunOptions = {}) =>
    withDaemonLog(() => runOk(CTR_BIN, ctrArgs(ns, args), { ...o, env: { ...clientEnv, ...o.env } }));

  return {
    root,
    socket,
    host: `unix://${socket}`,
    containerdSock,
    env: clientEnv,
    docker,
    dockerOk,
    ctr,
    ctrOk,
    log: readLog,
    stop,
  };
}

/**
 * Writes a build context directory `parent/name` with the Dockerfile and the given files (text or
 * bytes); a value `{ copyFrom }` copies an existing file (e.g. the static busybox). Returns the directory.
 */
export async function writeBuildContext(
  parent: string,
  name: string,
  dockerfile: string,
  files: Record<string, string | Uint8Array | { copyFrom: string }>,
): Promise<string> {
  const dir = join(parent, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === 'string' || content instanceof Uint8Array) await writeFile(join(dir, file), content);
    else await copyFile(content.copyFrom, join(dir, file));
  }
  return dir;
}

/** Path of a statically linked busybox (package busybox-static). */
export function staticBusybox(): string {
  for (const p of [process.env.TEST_BUSYBOX, '/bin/busybox', '/usr/bin/busybox']) {
    if (p !== undefined && existsSync(p)) return p;
  }
  throw new Error('no static busybox found: apt-get install busybox-static (or set TEST_BUSYBOX)');
}
