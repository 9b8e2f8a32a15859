/**
 * A real browser for the web UI's end-to-end tests: Debian's Chromium driven by
 * playwright-core (no browser download). A Chromium that cannot start fails the test that
 * asked for it; nothing is skipped.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  } catch (err) {
    throw new Error(`Chromium (${CHROMIUM}) did not start; install it with apt-get install chromium: ${(err as Error).message}`);
  }
}

/**
 * One Chromium for a file's tests, started by the first test that asks for it. Each test
 * asks inside its own body, so a Chromium that cannot start fails every one of them (a
 * failing beforeAll would only have them reported as skipped).
 */
export function sharedBrowser(): { get(): Promise<Browser>; close(): Promise<void> } {
  let launched: Promise<Browser> | undefined;
  return {
    get: () => (launched ??= launchBrowser()),
    close: async () => {
      if (launched) await launched.then((browser) => browser.close(), () => {});
    },
  };
}

/**
 * A fresh browser context (its own cookies) on `baseURL`, collecting what the page reported
 * as errors: uncaught exceptions, console errors (CSP violations among them) and requests
 * to any other origin.
 */
export async function openContext(
  browser: Browser,
  baseURL: string,
  options: { colorScheme?: 'light' | 'dark'; width?: number } = {},
): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({
    baseURL,
    colorScheme: options.colorScheme ?? 'light',
    viewport: { width: options.width ?? 1280, height: 900 },
    reducedMotion: 'reduce',
  });
  const problems: string[] = [];
  const origin = new URL(baseURL).origin;
  context.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(origin) && !url.startsWith('data:')) problems.push(`request to another origin: ${url}`);
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    // A failed request (a 401, 403, 404 the page handles) is logged by Chromium itself; the page's own errors are not of that kind.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  return { context, page, problems };
}

/**
 * Where screenshots go: a temporary directory normally, docs/screenshots/ with
 * UPDATE_SCREENSHOTS=1 (to refresh the README's pictures).
 */
export async function screenshotDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    const dir = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
    await mkdir(dir, { recursive: true });
    return { dir, cleanup: async () => {} };
  }
  const dir = await mkdtemp(join(tmpdir(), 'berth-screenshots-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A full-page screenshot of `page` as `<name>-<scheme>.png`, once the page has settled. */
export async function screenshot(page: Page, dir: string, name: string, scheme: 'light' | 'dark'): Promise<string> {
  await page.emulateMedia({ colorScheme: scheme });
  const file = join(dir, `${name}-${scheme}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
  return file;
}

/** expect.poll with room for a loaded machine: pages settle when they settle, not within a second. */
export const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 30_000, interval: 100 });
