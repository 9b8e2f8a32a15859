/**
 * Real clients against an authenticating Berth: skopeo (copy --dest-creds, login, anonymous
 * pulls) in both modes, and the Docker engine (docker login, push, pull) in token mode.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, staticBusybox, writeBuildContext, type Dockerd } from '../helpers/dockerd.js';
import { offlineEnv, run, runExpectFailure, tryRun } from '../helpers/exec.js';
import { buildBusyboxImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { LAN_AUTH, USERS } from './lan.js';

const creds = (u: { name: string; password: string }) => `${u.name}:${u.password}`;

describe.each(['basic', 'token'] as const)('skopeo with auth mode %s', (mode) => {
  let reg: TestRegistry;
  let work: string;
  let layout: string;
  let env: NodeJS.ProcessEnv;
  const skopeo = (args: string[], input?: string) => run('skopeo', args, { env, input });
  const skopeoFails = (args: string[], input?: string) => runExpectFailure('skopeo', args, { env, input });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-auth-skopeo-'));
    layout = join(work, 'layout');
    await buildBusyboxImage(layout, 'app', { workDir: work, randomBytes: 1024 });
    env = { ...offlineEnv, REGISTRY_AUTH_FILE: join(work, 'auth.json') };
    reg = await startRegistry({ auth: { mode, ...LAN_AUTH } }, { users: Object.values(USERS) });
  });
  afterAll(async () => {
    await reg?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copy --dest-creds pushes; without or with wrong credentials it is refused', async () => {
    const dest = `docker://${reg.host}/ci/app:1.0`;
    const none = await skopeoFails(['copy', '--dest-tls-verify=false', `oci:${layout}:app`, dest]);
    expect(none.stderr).toMatch(/unauthorized|authentication required/i);
    const wrong = await skopeoFails(['copy', '--dest-tls-verify=false', '--dest-creds', 'ci:wrong', `oci:${layout}:app`, dest]);
    expect(wrong.stderr).toMatch(/unauthorized|invalid username or password/i);
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds(USERS.ci), `oci:${layout}:app`, dest]);
    // A pull-only user is denied.
    const denied = await skopeoFails([
      'copy', '--dest-tls-verify=false', '--dest-creds', creds(USERS.reader), `oci:${layout}:app`, `docker://${reg.host}/team/app:1.0`,
    ]);
    expect(denied.stderr).toMatch(/denied/i);
  });

  it('anonymous pulls work where a rule allows them', async () => {
    const inspect = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/ci/app:1.0`]);
    expect(JSON.parse(inspect.stdout).schemaVersion).toBe(2);
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/ci/app:1.0`, `oci:${join(work, 'pulled')}:app`]);
  });

  it('skopeo login stores credentials that later commands use; a wrong password fails', async () => {
    const failed = await skopeoFails(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', reg.host], 'nope\n');
    expect(failed.stderr).toMatch(/invalid username\/password/);
    const ok = await skopeo(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', reg.host], `${USERS.alice.password}\n`);
    expect(ok.stdout).toContain('Login Succeeded');
    await skopeo(['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/ci/app:1.0`, `docker://${reg.host}/team/app:1.0`]);
    await skopeo(['delete', '--tls-verify=false', `docker://${reg.host}/team/app:1.0`]);
    await skopeo(['logout', reg.host]);
    const anonymousDelete = await skopeoFails(['delete', '--tls-verify=false', `docker://${reg.host}/ci/app:1.0`]);
    expect(anonymousDelete.stderr).toMatch(/unauthorized|authentication required|401/i);
    const readerDelete = await skopeoFails(['delete', '--tls-verify=false', '--creds', creds(USERS.reader), `docker://${reg.host}/ci/app:1.0`]);
    expect(readerDelete.stderr).toMatch(/denied|403/i);
  });
});

describe('docker engine against Berth in token mode', () => {
  let reg: TestRegistry;
  let dockerd: Dockerd;
  let work: string;

  beforeAll(async () => {
    reg = await startRegistry({ auth: { mode: 'token', ...LAN_AUTH } }, { users: Object.values(USERS) });
    dockerd = await startDockerd({ insecureRegistries: [reg.host] });
    work = await mkdtemp(join(tmpdir(), 'berth-auth-docker-'));
  });
  afterAll(async () => {
    try {
      await dockerd?.stop();
    } finally {
      await reg?.close();
      if (work) await rm(work, { recursive: true, force: true });
    }
  });

  it('docker login, push where allowed, denied elsewhere, anonymous pull', async () => {
    const docker = (args: string[], input?: string) => dockerd.docker(args, { input });
    const ctx = await writeBuildContext(work, 'app', ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY a.txt /a.txt', ''].join('\n'), {
      busybox: { copyFrom: staticBusybox() },
      'a.txt': `built ${Date.now()}\n`,
    });
    await dockerd.dockerOk(['build', '-q', '-t', `${reg.host}/ci/app:1.0`, ctx]);
    await dockerd.dockerOk(['tag', `${reg.host}/ci/app:1.0`, `${reg.host}/team/app:1.0`]);

    const anonymousPush = await docker(['push', `${reg.host}/ci/app:1.0`]);
    expect(anonymousPush.code).not.toBe(0);
    expect(anonymousPush.stdout + anonymousPush.stderr).toMatch(/unauthorized|authentication required/i);

    const wrong = await docker(['login', '-u', 'ci', '--password-stdin', reg.host], 'wrong\n');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized|incorrect username or password|invalid username or password/i);
    const login = await docker(['login', '-u', 'ci', '--password-stdin', reg.host], `${USERS.ci.password}\n`);
    expect(login.stdout, login.stderr).toContain('Login Succeeded');

    const push = await dockerd.dockerOk(['push', `${reg.host}/ci/app:1.0`]);
    expect(push.stdout).toMatch(/: digest: sha256:[0-9a-f]{64}/);
    const denied = await docker(['push', `${reg.host}/team/app:1.0`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stdout + denied.stderr).toMatch(/denied/i);

    await dockerd.dockerOk(['logout', reg.host]);
    await dockerd.dockerOk(['image', 'rm', `${reg.host}/ci/app:1.0`, `${reg.host}/team/app:1.0`]);
    const pull = await tryRun('docker', ['pull', `${reg.host}/ci/app:1.0`], { env: dockerd.env });
    expect(pull.code, pull.stderr).toBe(0);
  });
});
