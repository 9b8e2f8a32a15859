/** The session store on its own, with an injected clock: expiry, hashing, password fingerprints, CSRF tokens. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { presentedSession, SessionStore } from '../../src/auth/sessions.js';
import { MetadataIndex } from '../../src/db/index.js';

describe('SessionStore', () => {
  let dir: string;
  let index: MetadataIndex;
  let now = 1_000_000;
  const clock = () => now;
  const count = () => (index.database.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-sessions-'));
    index = new MetadataIndex(join(dir, 'index.db'), { durable: false });
  });
  afterEach(async () => {
    index.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds a session by its cookie until it expires, and never stores the token', () => {
    const store = new SessionStore(index.database, 60_000, clock);
    const { token, session } = store.create('alice', '$2b$hash-1');
    expect(session.expiresAt).toBe(now + 60_000);
    const stored = index.database.prepare('SELECT id FROM sessions').pluck().get() as string;
    expect(stored).not.toContain(token);
    expect(store.find(`a=b; berth_session=${token}; c=d`)).toEqual(session);
    now += 59_999;
    expect(store.find(`berth_session=${token}`)?.user).toBe('alice');
    now += 1;
    expect(store.find(`berth_session=${token}`)).toBeUndefined();
    expect(store.find(`berth_session=${token}x`)).toBeUndefined();
    expect(store.find(undefined)).toBeUndefined();
  });

  it('drops expired sessions as new ones are made, and revokes one by its cookie', () => {
    const store = new SessionStore(index.database, 60_000, clock);
    const old = store.create('alice', 'h');
    store.create('bob', 'h');
    expect(count()).toBe(2);
    now += 60_000;
    const fresh = store.create('carol', 'h');
    expect(count()).toBe(1);
    store.revoke(`berth_session=${old.token}`);
    expect(count()).toBe(1);
    store.revoke(`berth_session=${fresh.token}`);
    expect(count()).toBe(0);
  });

  it('ties a session to the password hash it was opened with, and checks CSRF tokens exactly', () => {
    const store = new SessionStore(index.database, 60_000, clock);
    const { session } = store.create('alice', 'hash-1');
    expect(store.current(session, 'hash-1')).toBe(true);
    expect(store.current(session, 'hash-2')).toBe(false);
    expect(store.csrfMatches(session, session.csrf)).toBe(true);
    expect(store.csrfMatches(session, `${session.csrf}x`)).toBe(false);
    expect(store.csrfMatches(session, undefined)).toBe(false);
    expect(store.csrfMatches(session, '')).toBe(false);
  });

  it('treats every method but GET and HEAD as a change needing the token', () => {
    const headers = { cookie: 'berth_session=x', 'x-berth-csrf': ['t1', 't2'] };
    expect(presentedSession({ method: 'GET', headers })).toEqual({ cookie: 'berth_session=x', csrf: 't1', changes: false });
    expect(presentedSession({ method: 'HEAD', headers }).changes).toBe(false);
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', undefined]) expect(presentedSession({ method, headers }).changes).toBe(true);
  });
});
