import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/*
 * No image can be built here (no base image can be pulled), so these tests run what the
 * image runs, on this machine: its entry command, environment, working directory and
 * user, as the Dockerfile and docker-compose.yml say, with /app being this repository.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const asRoot = process.getuid?.() === 0;
/** uid and gid of the `node` user of the official Node.js images. */
const NODE_UID = 1000;

interface Image {
  env: Record<string, string>;
  /** Files copied from this repository into the image: path in the image -> path in the repository. */
  copies: Record<string, string>;
  workdir: string;
  user: string;
  volumes: string[];
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
}

/** The final stage of the Dockerfile: its instructions, continuation lines joined. */
async function readImage(): Promise<Image> {
  const text = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  const stage = lines.slice(lines.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true));
  const image: Image = { env: {}, copies: {}, workdir: '/', user: 'root', volumes: [], entrypoint: [], cmd: [], healthcheck: [] };
  for (const line of stage) {
    const [, instruction, rest] = /^(\w+)\s+(.*)$/.exec(line.trim())!;
    switch (instruction!.toUpperCase()) {
      case 'ENV':
        for (const [, key, value] of rest!.matchAll(/(\w+)=("[^"]*"|\S+)/g)) image.env[key!] = value!.replace(/^"|"$/g, '');
        break;
      case 'COPY': {
        const [source, target] = rest!.trim().split(/\s+/);
        if (!source!.startsWith('--')) image.copies[target!] = join(ROOT, source!);
        break;
      }
      case 'WORKDIR':
        image.workdir = rest!.trim();
        break;
      case 'USER':
        image.user = rest!.trim();
        break;
      case 'VOLUME':
        image.volumes = JSON.parse(rest!) as string[];
        break;
      case 'ENTRYPOINT':
        image.entrypoint = JSON.parse(rest!) as string[];
        break;
      case 'CMD':
        image.cmd = JSON.parse(rest!) as string[];
        break;
      case 'HEALTHCHECK':
        image.healthcheck = JSON.parse(/\bCMD\s+(\[.*\])/.exec(rest!)![1]!) as string[];
        break;
    }
  }
  return image;
}

/** A path of the image, here: a file it copies from this repository is that file, /app/ is this repository. */
function hostPath(path: string): string {
  return image.copies[path] ?? path.replace(/^\/app\//, ROOT);
}

/** A command of the image, run here: `node` is this Node.js. */
function onHost(argv: string[]): [string, string[]] {
  const [command, ...args] = argv.map((arg) => (arg === 'node' ? process.execPath : hostPath(arg)));
  return [command!, args];
}

/** The image's environment with its paths as they are here, and `over` on top. */
function imageEnv(over: Record<string, string> = {}): Record<string, string> {
  return { ...Object.fromEntries(Object.entries(image.env).map(([name, value]) => [name, hostPath(value)])), ...over };
}

interface Run {
  child: ChildProcess;
  /** The 'berth is ready' entry, or the exit code and stderr of a start that failed. */
  outcome: Promise<{ ready: Record<string, unknown> } | { code: number | null; stderr: string }>;
}

/** Runs `argv` as the container would: its environment only, in `cwd`, as uid 1000 (when this test may switch users). */
function runAsImage(argv: string[], env: Record<string, string>, cwd: string): Run {
  const [command, args] = onHost(argv);
  const [file, fileArgs] = asRoot
    ? ['setpriv', [`--reuid=${NODE_UID}`, `--regid=${NODE_UID}`, '--clear-groups', command, ...args]]
    : [command, args];
  const child = spawn(file, fileArgs, { cwd, env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const outcome = new Promise<{ ready: Record<string, unknown> } | { code: number | null; stderr: string }>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === 'berth is ready') resolve({ ready: entry });
      } catch {
        // not a log line
      }
    });
    child.once('close', (code) => resolve({ code, stderr }));
  });
  return { child, outcome };
}

function runSyncAsImage(argv: string[], env: Record<string, string>, cwd: string) {
  const [command, args] = onHost(argv);
  const [file, fileArgs] = asRoot ? ['setpriv', [`--reuid=${NODE_UID}`, `--regid=${NODE_UID}`, '--clear-groups', command, ...args]] : [command, args];
  return spawnSync(file, fileArgs, { cwd, env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8' });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const running: ChildProcess[] = [];
let dir: string;
let image: Image;
let compose: { services: { berth: { environment?: Record<string, string>; healthcheck: { test: string[] } } } };

/** A directory the image's user owns, standing for the volume. */
async function ownedDir(name: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  if (asRoot) await chown(path, NODE_UID, NODE_UID);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-container-'));
  await chmod(dir, 0o755);
  image = await readImage();
  compose = parseYaml(await readFile(join(ROOT, 'docker-compose.yml'), 'utf8')) as typeof compose;
});
afterEach(async () => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
    }
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the container image, run as it runs', () => {
  it('runs as uid 1000 in its data volume, on a supported LTS Node.js, and sets no BERTH_* variable but its configuration file', async () => {
    expect(image.user).toBe('node');
    expect(image.volumes).toEqual([image.workdir]);
    expect(Object.keys(image.env).filter((name) => name.startsWith('BERTH_'))).toEqual(['BERTH_CONFIG']);
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    for (const [, version] of dockerfile.matchAll(/^FROM node:(\d+)/gm)) expect(['22', '24']).toContain(version);
  });

  it('a mounted configuration file decides the address and data directory, and the health checks follow it', async () => {
    const volume = await ownedDir('volume-with-config');
    const elsewhere = await ownedDir('elsewhere');
    const port = await freePort();
    const file = join(dir, 'berth.yaml');
    await writeFile(file, `http:\n  addr: 127.0.0.1:${port}\nstorage:\n  root: ${elsewhere}\n`);
    const env = imageEnv({ ...compose.services.berth.environment, BERTH_CONFIG: file });
    const server = runAsImage([...image.entrypoint, ...image.cmd], env, volume);
    const outcome = await server.outcome;
    expect(outcome, JSON.stringify(outcome)).toHaveProperty('ready');
    expect((outcome as { ready: Record<string, unknown> }).ready).toMatchObject({ port, storage: elsewhere });
    for (const check of [image.healthcheck, compose.services.berth.healthcheck.test.slice(1)]) {
      const result = runSyncAsImage(check, env, volume);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toBe(`http://127.0.0.1:${port}/readyz: 200\n`);
    }
  });

  it("without a configuration file of yours, the image's own keeps the data in the volume itself", async () => {
    const checked = runSyncAsImage([...image.entrypoint, 'serve', '--check-config'], imageEnv(), dir);
    expect(checked.status, checked.stderr).toBe(0);
    const effective = JSON.parse(checked.stdout.slice(0, checked.stdout.lastIndexOf('}') + 1)) as { storage: { root: string }; http: { addr: string } };
    expect(effective.storage.root).toBe(image.volumes[0]);
    expect(effective.http.addr).toBe('0.0.0.0:5000');
  });

  it('a relative storage.root in a file of yours lands in the volume', async () => {
    const volume = await ownedDir('volume-relative');
    const file = join(dir, 'relative.yaml');
    await writeFile(file, 'storage:\n  root: ./registry\n');
    const server = runAsImage([...image.entrypoint, ...image.cmd], imageEnv({ BERTH_CONFIG: file, BERTH_HTTP_ADDR: '127.0.0.1:0' }), volume);
    const outcome = await server.outcome;
    expect(outcome, JSON.stringify(outcome)).toHaveProperty('ready');
    expect((outcome as { ready: Record<string, unknown> }).ready.storage).toBe(join(volume, 'registry'));
  });

  it.runIf(asRoot)('a root-owned bind-mounted data folder is one line saying which chown fixes it', async () => {
    const volume = join(dir, 'root-owned-volume');
    await mkdir(volume, { mode: 0o755 });
    const server = runAsImage([...image.entrypoint, ...image.cmd], imageEnv({ BERTH_HTTP_ADDR: '127.0.0.1:0', BERTH_STORAGE_ROOT: volume }), volume);
    const outcome = (await server.outcome) as { code: number | null; stderr: string };
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(new RegExp(`^berth: storage.root ${volume} .*\`chown -R ${NODE_UID}:${NODE_UID} ${volume}\`[^\n]*\n$`));
  });

  it.runIf(asRoot)('the TLS recipe: certificates made with --owner 1000:1000 are served by the image\'s user', async () => {
    const certs = join(dir, 'certs');
    await mkdir(certs, { mode: 0o755 });
    const made = spawnSync(join(ROOT, 'berth'), ['cert', 'self-signed', '--host', '127.0.0.1', '--out', certs, '--owner', `${NODE_UID}:${NODE_UID}`], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const volume = await ownedDir('volume-tls');
    const port = await freePort();
    const env = imageEnv({
      BERTH_HTTP_ADDR: `127.0.0.1:${port}`,
      BERTH_STORAGE_ROOT: volume,
      BERTH_HTTP_TLS_CERT: join(certs, 'server.crt'),
      BERTH_HTTP_TLS_KEY: join(certs, 'server.key'),
    });
    const outcome = await runAsImage([...image.entrypoint, ...image.cmd], env, volume).outcome;
    expect(outcome, JSON.stringify(outcome)).toHaveProperty('ready');
    const health = runSyncAsImage(image.healthcheck, env, volume);
    expect(health.stdout).toBe(`https://127.0.0.1:${port}/readyz: 200\n`);
  });

  it('keeps only the compiled SQLite addon of better-sqlite3, which still loads', async () => {
    const modules = join(dir, 'node_modules');
    for (const name of ['better-sqlite3', 'bindings', 'file-uri-to-path']) await cp(join(ROOT, 'node_modules', name), join(modules, name), { recursive: true });
    const pruned = spawnSync('sh', [join(ROOT, 'deploy/prune-addon.sh'), modules], { encoding: 'utf8' });
    expect(pruned.status, pruned.stderr).toBe(0);
    const du = spawnSync('du', ['-sk', join(modules, 'better-sqlite3')], { encoding: 'utf8' });
    expect(Number(du.stdout.split('\t')[0])).toBeLessThan(8 * 1024);
    const load = spawnSync(
      process.execPath,
      ['-e', `const Database = require(${JSON.stringify(join(modules, 'better-sqlite3'))}); console.log(new Database(':memory:').prepare('select 6 * 7 as n').get().n)`],
      { encoding: 'utf8' },
    );
    expect(load.stderr).toBe('');
    expect(load.stdout).toBe('42\n');
  });
});
