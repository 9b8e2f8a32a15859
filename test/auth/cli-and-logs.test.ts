/**
 * `berth user …` through the built CLI (passwords from stdin, never arguments), and a
 * real `berth serve` process whose log must hold no password and no token.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashSync } from '@node-rs/bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/oci.js';
import { spawnRegistry } from '../helpers/process.js';
import { startRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { pushAs } from './lan.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

describe('berth user', () => {
  let dir: string;
  const berth = (args: string[], input = '') =>
    spawnSync(process.execPath, [CLI, 'user', ...args], {
      encoding: 'utf8',
      input,
      env: { PATH: process.env.PATH, BERTH_STORAGE_ROOT: dir },
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-user-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds, lists, regroups, changes passwords, imports and removes users', async () => {
    expect(berth(['add', 'alice', '--group', 'admins', '--group', 'ci'], 'first-pw\n').status).toBe(0);
    expect(berth(['add', 'ci'], 'ci-pw\n').status).toBe(0);
    const again = berth(['add', 'alice'], 'x\n');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('already exists');
    expect(berth(['add', 'anonymous'], 'x\n').status).toBe(1);
    expect(berth(['add', 'empty'], '\n').stderr).toContain('must not be empty');
    // There is no way to pass a password as an argument.
    expect(berth(['add', 'bob', '--password', 'x']).status).not.toBe(0);

    expect(berth(['passwd', 'alice'], 'second-pw\n').status).toBe(0);
    expect(berth(['passwd', 'nobody'], 'x\n').status).toBe(1);
    expect(berth(['groups', 'ci', 'builders']).status).toBe(0);

    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, `carol:${hashSync('carol-pw', 5).replace(/^\$2b\$/, '$2y$')}\n`);
    expect(berth(['import', htpasswd]).stdout).toContain('imported 1 user');
    expect(berth(['list']).stdout).toBe('alice\tadmins,ci\ncarol\t\nci\tbuilders\n');

    expect(berth(['remove', 'ci']).status).toBe(0);
    expect(berth(['remove', 'ci']).status).toBe(1);
    expect(berth(['list']).stdout).toBe('alice\tadmins,ci\ncarol\t\n');

    // The server sees them.
    const reg = await startRegistry({ auth: { mode: 'basic' } }, { dataDir: dir });
    try {
      const status = async (user: string, pw: string) =>
        (await call(reg.url, 'GET', '/v2/', { headers: { authorization: basic(user, pw) } })).status;
      expect(await status('alice', 'second-pw')).toBe(200);
      expect(await status('alice', 'first-pw')).toBe(401);
      expect(await status('carol', 'carol-pw')).toBe(200);
      expect(await status('ci', 'ci-pw')).toBe(401);
    } finally {
      await reg.close();
    }
  });
});

describe('logs', () => {
  it('never contain passwords or tokens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-auth-logs-'));
    const password = 'Sup3r-Secret-Pw';
    expect(
      spawnSync(process.execPath, [CLI, 'user', 'add', 'ci'], { input: `${password}\n`, env: { PATH: process.env.PATH, BERTH_STORAGE_ROOT: dir } })
        .status,
    ).toBe(0);
    const registry = await spawnRegistry(dir, {
      BERTH_AUTH_MODE: 'token',
      BERTH_AUTH_RULES: JSON.stringify([{ repositories: '**', users: ['ci'], actions: ['pull', 'push'] }]),
      BERTH_LOG_LEVEL: 'trace',
    });
    let log = '';
    registry.child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    registry.child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    try {
      const res = await call(registry.url, 'GET', '/token?service=berth&scope=repository:ci/app:pull,push', {
        headers: { authorization: basic('ci', password) },
      });
      const token = res.json().token as string;
      expect((await pushAs(registry.url, 'ci/app', '1', { authorization: `Bearer ${token}` })).statuses).toEqual([201, 201, 201]);
      await pushAs(registry.url, 'ci/app', '2', { authorization: basic('ci', password) });
      await call(registry.url, 'GET', '/v2/', { headers: { authorization: basic('ci', 'Wrong-Secret-Pw') } });
      await call(registry.url, 'POST', '/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=password&username=ci&password=${password}&service=berth`,
      });
      registry.child.kill('SIGTERM');
      await registry.exited;
      expect(log).toContain('"msg":"request"');
      expect(log).not.toContain(password);
      expect(log).not.toContain('Wrong-Secret-Pw');
      expect(log).not.toContain(token.split('.')[2]!);
      expect(log).not.toContain(Buffer.from(`ci:${password}`).toString('base64'));
    } finally {
      registry.child.kill('SIGKILL');
      await registry.exited;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
