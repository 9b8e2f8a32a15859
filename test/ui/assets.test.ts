/**
 * The web UI's document and assets as Berth serves them: the same document at every page's
 * path, a Content Security Policy, revalidation of the document and year-long caching of the
 * hashed assets, precompressed variants, nothing from another origin, and /v2 untouched.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_ROOT } from '../../src/ui/routes.js';
import { call, expectError } from '../helpers/oci.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('web UI assets', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('serves the document at every page path, with a strict CSP and revalidation by ETag', async () => {
    const first = await call(reg.url, 'GET', '/');
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(first.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(first.headers.get('x-content-type-options')).toBe('nosniff');
    expect(first.headers.get('x-frame-options')).toBe('DENY');
    expect(first.headers.get('cache-control')).toBe('no-cache');
    expect(first.text).toBe(await readFile(join(WEB_ROOT, 'index.html'), 'utf8'));
    for (const path of ['/repositories', '/repositories/team/app', '/repositories/team/app:1.0', '/repositories/a/b@sha256:00', '/layers/sha256:00', '/storage', '/sign-in']) {
      const res = await call(reg.url, 'GET', path);
      expect(res.status, path).toBe(200);
      expect(res.text, path).toBe(first.text);
    }
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await call(reg.url, 'GET', '/storage', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it('the document loads only its own hashed assets; they are cached for a year and served precompressed', async () => {
    const html = (await call(reg.url, 'GET', '/')).text;
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBe(3);
    for (const url of urls) expect(url).toMatch(/^\/assets\/[\w-]+-[\w]{8}\.(js|css|svg)$/);
    const script = urls.find((u) => u.endsWith('.js'))!;
    const original = await readFile(join(WEB_ROOT, script));
    // No address of another origin anywhere in what the browser runs (XML namespace names are never fetched).
    for (const url of urls) {
      const text = (await readFile(join(WEB_ROOT, url))).toString().replaceAll(/http:\/\/www\.w3\.org\/[\w/.]+/g, '');
      expect(text).not.toMatch(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}\//i);
    }

    const br = await call(reg.url, 'GET', script, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(br.status).toBe(200);
    expect(br.headers.get('content-encoding')).toBe('br');
    expect(br.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    expect(br.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(brotliDecompressSync(br.body).equals(original)).toBe(true);
    const gz = await call(reg.url, 'GET', script, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gunzipSync(gz.body).equals(original)).toBe(true);
    const plain = await call(reg.url, 'GET', script);
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(plain.body.equals(original)).toBe(true);
  });

  it('answers unknown assets and other paths with the registry 404, and leaves /v2 alone', async () => {
    expectError(await call(reg.url, 'GET', '/assets/missing-00000000.js'), 404, 'UNSUPPORTED');
    expectError(await call(reg.url, 'GET', '/favicon.ico'), 404, 'UNSUPPORTED');
    expectError(await call(reg.url, 'GET', '/elsewhere'), 404, 'UNSUPPORTED');
    const base = await call(reg.url, 'GET', '/v2/');
    expect(base.status).toBe(200);
    expect(base.text).toBe('{}');
    expect(base.headers.get('content-security-policy')).toBeNull();
  });

  it('ships every built asset with brotli and gzip copies', async () => {
    const files = await readdir(join(WEB_ROOT, 'assets'));
    const originals = files.filter((f) => !f.endsWith('.br') && !f.endsWith('.gz'));
    expect(originals.length).toBe(3);
    for (const f of originals) expect(files).toEqual(expect.arrayContaining([`${f}.br`, `${f}.gz`]));
  });
});
