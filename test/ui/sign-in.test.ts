/**
 * Signing in and out of the web UI in a real browser (Chromium), mode basic: the form,
 * keyboard use, the HttpOnly cookie, CSRF on forged requests from the page, and the
 * session ended on the server by signing out.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, LAN_AUTH, pushAs, seedLan, USERS, type Seeded } from '../auth/lan.js';
import { eventually, openContext, screenshot, screenshotDir, sharedBrowser } from '../helpers/browser.js';
import { call } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const sessionCount = (dataDir: string) => {
  const db = new Database(join(dataDir, 'index.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

/** What a script on the page gets when it sends `method path` itself, with or without the CSRF token. */
async function forged(page: import('playwright-core').Page, method: string, path: string, csrf: boolean): Promise<{ status: number; code: string | undefined }> {
  return page.evaluate(
    async ({ method, path, csrf }) => {
      const headers: Record<string, string> = { 'X-Requested-With': 'XMLHttpRequest' };
      if (csrf) {
        const session = (await (await fetch('/_berth/api/session')).json()) as { csrfToken: string };
        headers['X-Berth-CSRF'] = session.csrfToken;
      }
      const res = await fetch(path, { method, headers });
      const text = await res.text();
      return { status: res.status, code: text ? (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code : undefined };
    },
    { method, path, csrf },
  );
}

describe('web UI sign-in in Chromium', () => {
  let seeded: Seeded;
  let reg: TestRegistry;
  const chromium = sharedBrowser();
  let shots: Awaited<ReturnType<typeof screenshotDir>>;

  beforeAll(async () => {
    shots = await screenshotDir();
    seeded = await seedLan();
    reg = await startRegistry({ auth: { mode: 'basic', ...LAN_AUTH } }, { dataDir: seeded.dataDir });
  });
  afterAll(async () => {
    await chromium.close();
    await reg?.close();
    await shots?.cleanup();
    if (seeded) await rm(seeded.dataDir, { recursive: true, force: true });
  });

  it('signs in with the keyboard, keeps the cookie from scripts, and signs out ending the session on the server', async () => {
    const { context, page, problems } = await openContext(await chromium.get(), reg.url);
    try {
      await page.goto('/');
      const signInLink = page.getByRole('link', { name: 'Sign in' });
      await signInLink.waitFor();
      await signInLink.click();
      await page.waitForURL('**/sign-in*');
      await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
      for (const scheme of ['light', 'dark'] as const) await screenshot(page, shots.dir, 'sign-in', scheme);

      // Labelled fields, filled and submitted with the keyboard alone.
      await page.getByLabel('User name').focus();
      await page.keyboard.type('reader');
      await page.keyboard.press('Tab');
      await page.keyboard.type('not-the-password');
      await page.keyboard.press('Enter');
      await eventually(() => page.getByRole('alert').textContent()).toBe('Wrong user name or password.');
      const before = sessionCount(reg.dataDir);

      await page.getByLabel('Password').fill(USERS.reader.password);
      await page.getByLabel('Password').press('Enter');
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      expect(await page.locator('.account .user').textContent()).toBe('reader');
      expect(new URL(page.url()).pathname).toBe('/');
      expect(sessionCount(reg.dataDir)).toBe(before + 1);

      const cookies = await context.cookies();
      const cookie = cookies.find((c) => c.name === 'berth_session')!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
      expect(cookie.expires).toBeGreaterThan(Date.now() / 1000 + 11 * 3600);
      expect(await page.evaluate(() => document.cookie)).not.toContain('berth_session');

      // The browser now reads what the reader may pull, through the cookie.
      expect(await page.evaluate(async () => (await fetch('/v2/internal/app/tags/list')).status)).toBe(200);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('link', { name: 'Sign in' }).waitFor();
      expect(sessionCount(reg.dataDir)).toBe(before);
      expect((await context.cookies()).find((c) => c.name === 'berth_session')).toBeUndefined();
      // The old cookie, replayed, is refused: the session ended on the server.
      const replay = await call(reg.url, 'GET', '/v2/internal/app/tags/list', { headers: { cookie: `berth_session=${cookie.value}` } });
      expect(replay.status).toBe(401);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('forged changes from the page are refused: a pull-only user with or without the CSRF token, an admin without it', async () => {
    expect((await pushAs(reg.url, 'team/forge', 'v1', as(USERS.alice))).statuses).toEqual([201, 201, 201]);
    const { context, page } = await openContext(await chromium.get(), reg.url);
    try {
      const signIn = async (user: { name: string; password: string }) => {
        await page.goto('/sign-in');
        await page.getByLabel('User name').fill(user.name);
        await page.getByLabel('Password').fill(user.password);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('button', { name: 'Sign out' }).waitFor();
      };
      await signIn(USERS.reader);
      expect(await forged(page, 'DELETE', '/v2/team/forge/manifests/v1', false)).toEqual({ status: 403, code: 'DENIED' });
      expect(await forged(page, 'DELETE', '/v2/team/forge/manifests/v1', true)).toEqual({ status: 403, code: 'DENIED' });
      expect(await forged(page, 'POST', '/_berth/admin/gc', true)).toEqual({ status: 403, code: 'DENIED' });
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('link', { name: 'Sign in' }).waitFor();

      await signIn(USERS.alice);
      expect(await forged(page, 'DELETE', '/v2/team/forge/manifests/v1', false)).toEqual({ status: 403, code: 'DENIED' });
      expect((await call(reg.url, 'GET', '/v2/team/forge/tags/list')).json().tags).toEqual(['v1']);
      expect(await forged(page, 'DELETE', '/v2/team/forge/manifests/v1', true)).toEqual({ status: 202, code: undefined });
      expect((await call(reg.url, 'GET', '/v2/team/forge/tags/list')).json().tags).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a page of another site cannot use the session: the SameSite cookie stays home and its forged POST runs nothing', async () => {
    const { context, page } = await openContext(await chromium.get(), reg.url);
    try {
      await page.goto('/sign-in');
      await page.getByLabel('User name').fill(USERS.alice.name);
      await page.getByLabel('Password').fill(USERS.alice.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      const gcRuns = async () => /^berth_gc_runs_total\{result="completed"\} (\d+)$/m.exec((await call(reg.url, 'GET', '/metrics')).text)?.[1] ?? '0';
      const runsBefore = await gcRuns();
      // Another origin (localhost instead of 127.0.0.1) in the same browser, sending a simple cross-site request.
      const other = reg.url.replace('127.0.0.1', 'localhost');
      await page.goto(`${other}/healthz`); // a page there without the UI's CSP, which would stop the request itself
      const result = await page.evaluate(async (target) => {
        try {
          const res = await fetch(`${target}/_berth/admin/gc`, { method: 'POST', credentials: 'include', mode: 'no-cors' });
          return res.type;
        } catch (err) {
          return `failed: ${(err as Error).message}`;
        }
      }, reg.url);
      expect(result).toBe('opaque');
      // The collection never ran: without the cookie the request was anonymous and refused.
      expect(await gcRuns()).toBe(runsBefore);
      // The same request from the registry's own page, with the token, does run one.
      await page.goto(`${reg.url}/`);
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      expect(await forged(page, 'POST', '/_berth/admin/gc', true)).toMatchObject({ status: 200 });
      expect(Number(await gcRuns())).toBe(Number(runsBefore) + 1);
    } finally {
      await context.close();
    }
  });
});
