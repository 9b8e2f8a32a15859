/**
 * Logins under parallel load: parallel wrong passwords are limited exactly as sequential
 * ones, parallel requests with the same right credentials share one check, and password
 * checks waiting for their turn never hold up another client's pull.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { call, pushImage } from '../helpers/oci.js';
import { startRegistry } from '../helpers/registry.js';
import { basic } from '../helpers/users.js';
import { as, requestFrom, USERS } from './lan.js';

/** A GET from `source` whose request has been handed to the network (`sent`) and whose answer is awaited (`status`). */
function send(source: string, url: string, headers: Record<string, string>): { sent: Promise<void>; status: Promise<number> } {
  let sent!: () => void;
  const written = new Promise<void>((resolve) => (sent = resolve));
  const status = new Promise<number>((resolve, reject) => {
    const req = request(url, { localAddress: source, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.on('finish', sent);
    req.end();
  });
  return { sent: written, status };
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe('logins under parallel load', () => {
  it('60 parallel wrong passwords from one address: exactly maxLoginFailures are checked, the other 50 get 429', async () => {
    const reg = await startRegistry(
      { auth: { mode: 'basic', maxLoginFailures: 10, rules: [{ repositories: '**', users: ['authenticated'], actions: ['pull'] }] } },
      { users: [USERS.alice, USERS.bob] },
    );
    try {
      const statuses = await Promise.all(
        Array.from({ length: 60 }, (_, i) => requestFrom('127.0.0.2', `${reg.url}/v2/`, { authorization: basic('bob', `guess-${i}`) })),
      );
      expect(count(statuses.map((s) => s.status), 401)).toBe(10);
      expect(count(statuses.map((s) => s.status), 429)).toBe(50);
      // The address and the attacked account are locked out, the right password included.
      expect((await requestFrom('127.0.0.2', `${reg.url}/v2/`, as(USERS.alice))).status).toBe(429);
      expect((await requestFrom('127.0.0.3', `${reg.url}/v2/`, as(USERS.bob))).status).toBe(429);
      expect((await requestFrom('127.0.0.3', `${reg.url}/v2/`, as(USERS.alice))).status).toBe(200);
    } finally {
      await reg.close();
    }
  });

  it('parallel requests with the same right credentials share one check: none is throttled', async () => {
    const reg = await startRegistry(
      { auth: { mode: 'basic', maxLoginFailures: 2, rules: [{ repositories: '**', users: ['authenticated'], actions: ['pull'] }] } },
      { users: [USERS.alice] },
    );
    try {
      const statuses = await Promise.all(Array.from({ length: 20 }, () => requestFrom('127.0.0.4', `${reg.url}/v2/`, as(USERS.alice))));
      expect(statuses.map((s) => s.status)).toEqual(Array(20).fill(200));
    } finally {
      await reg.close();
    }
  });

  it('an anonymous pull is answered while password checks are still waiting for their turn', async () => {
    const reg = await startRegistry(
      {
        auth: {
          mode: 'basic',
          maxLoginFailures: 1000,
          rules: [{ repositories: '**', users: ['*'], actions: ['pull', 'push'] }],
        },
      },
      { users: [USERS.bob] },
    );
    try {
      const image = await pushImage(reg.url, 'team/app', 'v1');
      const logins = Array.from({ length: 40 }, (_, i) => send('127.0.0.5', `${reg.url}/v2/`, { authorization: basic('bob', `guess-${i}`) }));
      let answered = 0;
      for (const login of logins) void login.status.then(() => answered++, () => undefined);
      await Promise.all(logins.map((l) => l.sent));
      // The logins reached the server first; the pull must not wait for their checks.
      const pull = await call(reg.url, 'GET', `/v2/team/app/blobs/${image.json.layers[0].digest}`);
      const answeredAtPull = answered;
      expect(pull.status).toBe(200);
      // At most two checks run at once, each far longer than a pull: most are still waiting.
      // (With bcrypt on the event loop, the pull came after 39 of the 40.)
      expect(answeredAtPull).toBeLessThan(20);
      expect(await Promise.all(logins.map((l) => l.status))).toEqual(Array(40).fill(401));
    } finally {
      await reg.close();
    }
  });
});
