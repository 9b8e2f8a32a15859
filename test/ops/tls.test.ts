import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { offlineEnv, run, runExpectFailure } from '../helpers/exec.js';
import { buildBusyboxImage, readLayoutTag } from '../helpers/images.js';
import { call } from '../helpers/oci.js';
import { killHard, spawnRegistry, type RegistryProcess } from '../helpers/process.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const cert = (args: string[]) => spawnSync(process.execPath, [CLI, 'cert', 'self-signed', ...args], { encoding: 'utf8' });

/** `berth cert self-signed` into `out`; returns its output. */
function selfSigned(out: string, hosts = ['127.0.0.1', 'localhost'], extra: string[] = []): string {
  const result = cert([...hosts.flatMap((host) => ['--host', host]), '--out', out, '--port', '5443', ...extra]);
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

/** An HTTPS/1.1 request trusting only `ca`; resolves with the response (its body unread). */
function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}) {
  return new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = httpsRequest(url, { ca, agent: false, headers }, resolve);
    req.on('error', reject);
    req.end();
  });
}

async function readAll(res: import('node:http').IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function http2Get(origin: string, ca: Buffer, path: string): Promise<{ status: number; headers: Record<string, unknown>; alpn: string | false | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(origin, { ca });
    session.on('error', reject);
    const stream = session.request({ ':path': path });
    stream.on('response', (headers) => {
      stream.resume();
      stream.on('end', () => {
        const alpn = session.alpnProtocol;
        session.close();
        resolve({ status: Number(headers[':status']), headers, alpn });
      });
    });
    stream.on('error', reject);
  });
}

describe('TLS', () => {
  it('berth cert self-signed: HTTP/2 and HTTP/1.1 over TLS, and skopeo pushes and pulls trusting only the CA', async () => {
    const certs = await tempDir('berth-certs-');
    const out = selfSigned(certs);
    expect(out).toContain('/etc/docker/certs.d/127.0.0.1:5443/ca.crt');
    expect(out).toContain(`tlsCert: ${join(certs, 'server.crt')}`);
    expect((await stat(join(certs, 'server.key'))).mode & 0o777).toBe(0o600);
    const ca = await readFile(join(certs, 'ca.crt'));

    const reg: TestRegistry = await startRegistry({ http: { tlsCert: join(certs, 'server.crt'), tlsKey: join(certs, 'server.key') } });
    cleanups.push(() => reg.close());
    const origin = `https://${reg.host}`;

    const h2 = await http2Get(origin, ca, '/v2/');
    expect(h2).toMatchObject({ status: 200, alpn: 'h2' });
    expect(h2.headers['docker-distribution-api-version']).toBe('registry/2.0');
    const h1 = await httpsGet(`${origin}/v2/`, ca);
    expect(h1.httpVersion).toBe('1.1');
    expect(h1.statusCode).toBe(200);
    await readAll(h1);
    await expect(call(reg.url, 'GET', '/v2/')).rejects.toThrow(); // plain HTTP is not spoken

    const work = await tempDir('berth-tls-skopeo-');
    const layout = join(work, 'src');
    const image = await buildBusyboxImage(layout, 'app', { workDir: work });
    // skopeo reads CA certificates (*.crt) from a directory, as docker does from certs.d.
    const trust = join(work, 'trust');
    await mkdir(trust);
    await copyFile(join(certs, 'ca.crt'), join(trust, 'ca.crt'));
    const skopeo = (args: string[]) => run('skopeo', args, { env: offlineEnv, timeoutMs: 120_000 });

    const refused = await runExpectFailure('skopeo', ['inspect', `docker://${reg.host}/team/app:1`], { env: offlineEnv, timeoutMs: 60_000 });
    expect(refused.stderr).toMatch(/certificate/);
    await skopeo(['copy', '--dest-cert-dir', trust, `oci:${layout}:app`, `docker://${reg.host}/team/app:1`]);
    const back = join(work, 'back');
    await skopeo(['copy', '--src-cert-dir', trust, `docker://${reg.host}/team/app:1`, `oci:${back}:app`]);
    const pulled = await readLayoutTag(back, 'app');
    expect(pulled.digest).toBe(image.digest);
  });

  it('serves multi-MiB blobs intact to several HTTP/2 streams of one session at once', async () => {
    const certs = await tempDir('berth-certs-');
    selfSigned(certs);
    const ca = await readFile(join(certs, 'ca.crt'));
    const reg: TestRegistry = await startRegistry({ http: { tlsCert: join(certs, 'server.crt'), tlsKey: join(certs, 'server.key') } });
    cleanups.push(() => reg.close());
    const origin = `https://${reg.host}`;
    const blobs = [3, 2, 1].map((mib, i) => Buffer.alloc(mib * 1024 * 1024 + i, i + 1).fill(i * 7 + 3, 1000, 5000));
    const digests = blobs.map((b) => `sha256:${createHash('sha256').update(b).digest('hex')}`);
    for (const [i, blob] of blobs.entries()) {
      await new Promise<void>((resolve, reject) => {
        const req = httpsRequest(`${origin}/v2/h2/blobs/uploads/?digest=${digests[i]}`, { method: 'POST', ca, agent: false }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`upload answered ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(blob);
      });
    }
    const session = http2Connect(origin, { ca });
    cleanups.push(async () => session.destroy());
    const download = (digest: string) =>
      new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': `/v2/h2/blobs/${digest}` });
        const hash = createHash('sha256');
        stream.on('data', (chunk: Buffer) => hash.update(chunk));
        stream.on('end', () => resolve(`sha256:${hash.digest('hex')}`));
        stream.on('error', reject);
      });
    const got = await Promise.all(Array.from({ length: 9 }, (_, i) => download(digests[i % 3]!)));
    expect(got).toEqual(Array.from({ length: 9 }, (_, i) => digests[i % 3]));
  });

  it('HTTP/2: a request refused before its body was read is answered, then its stream reset; an idle body is cut; the session goes on', async () => {
    const certs = await tempDir('berth-certs-');
    selfSigned(certs);
    const ca = await readFile(join(certs, 'ca.crt'));
    const reg = await startRegistry({
      auth: { mode: 'basic', rules: [{ repositories: 'open/**', users: ['*'], actions: ['pull', 'push'] }] },
      limits: { bodyIdleTimeout: '1s' },
      http: { tlsCert: join(certs, 'server.crt'), tlsKey: join(certs, 'server.key') },
    });
    cleanups.push(() => reg.close());
    const session = http2Connect(`https://${reg.host}`, { ca });
    cleanups.push(async () => session.destroy());
    const upload = session.request({ ':method': 'POST', ':path': '/v2/a/b/blobs/uploads/?digest=sha256:' + '0'.repeat(64), 'content-type': 'application/octet-stream' });
    upload.on('error', () => undefined);
    upload.write(Buffer.alloc(64 * 1024)); // and never ends the body
    const status = await new Promise<number>((resolve) => upload.on('response', (headers) => resolve(Number(headers[':status']))));
    expect(status).toBe(401);
    upload.resume();
    await new Promise((resolve) => upload.on('close', resolve));
    expect(upload.rstCode).toBe(0); // NGHTTP2_NO_ERROR: answered, stop sending
    // An upload that stops sending is cut: its stream is reset.
    const idle = session.request({ ':method': 'POST', ':path': '/v2/open/x/blobs/uploads/?digest=sha256:' + '0'.repeat(64), 'content-type': 'application/octet-stream' });
    idle.on('error', () => undefined);
    idle.write(Buffer.alloc(1024));
    await new Promise((resolve) => idle.on('close', resolve));
    expect(idle.rstCode).not.toBe(0);
    const health = session.request({ ':path': '/healthz' });
    const healthStatus = await new Promise<number>((resolve) => health.on('response', (headers) => resolve(Number(headers[':status']))));
    health.resume();
    expect(healthStatus).toBe(200);
  });

  it('reloads the certificate on SIGHUP while a download over the old one goes on', async () => {
    const certs = await tempDir('berth-certs-');
    selfSigned(certs);
    const oldCa = await readFile(join(certs, 'ca.crt'));
    const registry: RegistryProcess = await spawnRegistry(await tempDir('berth-tls-data-'), {
      BERTH_HTTP_TLS_CERT: join(certs, 'server.crt'),
      BERTH_HTTP_TLS_KEY: join(certs, 'server.key'),
    });
    cleanups.push(() => killHard(registry));
    const origin = `https://127.0.0.1:${registry.ready.port as number}`;

    // A blob big enough that the download is still going while the certificate changes.
    const blob = Buffer.alloc(32 * 1024 * 1024, 7);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    await new Promise<void>((resolve, reject) => {
      const req = httpsRequest(`${origin}/v2/big/blobs/uploads/?digest=${digest}`, { method: 'POST', ca: oldCa, agent: false }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`upload answered ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(blob);
    });

    const download = await httpsGet(`${origin}/v2/big/blobs/${digest}`, oldCa);
    expect(download.statusCode).toBe(200);
    download.pause();

    selfSigned(certs); // a new CA and server certificate in the same files
    const newCa = await readFile(join(certs, 'ca.crt'));
    registry.child.kill('SIGHUP');
    let reloaded = false;
    for (let i = 0; i < 100 && !reloaded; i++) {
      reloaded = await httpsGet(`${origin}/v2/`, newCa).then(
        async (res) => (await readAll(res), true),
        () => false,
      );
      if (!reloaded) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(reloaded).toBe(true);
    await expect(httpsGet(`${origin}/v2/`, oldCa)).rejects.toThrow();

    download.resume();
    const body = await readAll(download);
    expect(body.length).toBe(blob.length);
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(digest);
  });

  it('writes IPv4-mapped IPv6 addresses and internationalized names as clients check them, and TLS handshakes by them succeed', async () => {
    const certs = await tempDir('berth-certs-');
    await chmod(certs, 0o755);
    selfSigned(certs, ['bücher.lan', '::ffff:127.0.0.1', '127.0.0.1', 'FE80::1', '[::1]', '*.apps.lan']);
    const ca = await readFile(join(certs, 'ca.crt'));
    const server = new X509Certificate(await readFile(join(certs, 'server.crt')));
    expect(server.verify(new X509Certificate(ca).publicKey)).toBe(true);
    expect(server.checkHost('xn--bcher-kva.lan')).toBe('xn--bcher-kva.lan');
    expect(server.checkHost('registry.apps.lan')).toBe('*.apps.lan');
    expect(server.checkHost('other.lan')).toBeUndefined();
    for (const ip of ['::ffff:127.0.0.1', '::ffff:7f00:1', '127.0.0.1', 'fe80::1', '::1']) expect(server.checkIP(ip), ip).toBe(ip);
    expect(server.checkIP('::ffff:0127')).toBeUndefined();
    expect(server.subject).toBe('CN=xn--bcher-kva.lan');
    expect(server.subjectAltName).not.toMatch(/[^\x20-\x7e]/);

    // A real handshake by each: Berth on every interface, run (as the container's user
    // would) by the user that --owner gave the server's files to.
    const owned = await tempDir('berth-certs-owned-');
    await chmod(owned, 0o755);
    const asRoot = process.getuid?.() === 0;
    selfSigned(owned, ['bücher.lan', '::ffff:127.0.0.1'], asRoot ? ['--owner', '65534:65534'] : []);
    const ownedCa = await readFile(join(owned, 'ca.crt'));
    if (asRoot) {
      expect((await stat(join(owned, 'server.key'))).uid).toBe(65534);
      expect((await stat(join(owned, 'ca.key'))).uid).toBe(0);
    }
    const data = await tempDir('berth-tls-data-');
    await chmod(data, 0o777);
    const registry = await spawnRegistry(
      data,
      { BERTH_HTTP_ADDR: ':0', BERTH_HTTP_TLS_CERT: join(owned, 'server.crt'), BERTH_HTTP_TLS_KEY: join(owned, 'server.key') },
      asRoot ? { uid: 65534 } : {},
    );
    cleanups.push(() => killHard(registry));
    const port = registry.ready.port as number;
    const byIp = await httpsGet(`https://[::ffff:127.0.0.1]:${port}/v2/`, ownedCa);
    expect(byIp.statusCode).toBe(200);
    await readAll(byIp);
    const byName = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/v2/', servername: 'xn--bcher-kva.lan', ca: ownedCa, agent: false }, resolve);
      req.on('error', reject);
      req.end();
    });
    expect(byName.statusCode).toBe(200);
    await readAll(byName);
    // The first certificate's CA is not this one: the check is real.
    await expect(httpsGet(`https://[::ffff:127.0.0.1]:${port}/v2/`, ca)).rejects.toThrow();
  });

  it('refuses an IPv6 zone, a name that is no DNS name, and --owner without root, in one line each', async () => {
    const certs = await tempDir('berth-certs-');
    const zone = cert(['--host', 'fe80::1%eth0', '--out', certs]);
    expect(zone.status).toBe(1);
    expect(zone.stderr).toBe('berth: --host fe80::1%eth0: a certificate cannot carry an IPv6 zone (%eth0); give the address without it, fe80::1\n');
    const bad = cert(['--host', 'under_score.lan', '--out', certs]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('berth: --host under_score.lan is neither an IP address nor a DNS name (letters, digits and hyphens between dots)\n');
    const owner = cert(['--host', 'x.lan', '--out', certs, '--owner', 'nobody']);
    expect(owner.stderr).toBe('berth: --owner nobody: expected numeric UID or UID:GID, e.g. 1000:1000\n');
  });
});
