import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config.js';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads `http.tlsCert` and `http.tlsKey`, refusing a pair that does not belong together. */
export async function readKeyPair(http: Config['http']): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(http.tlsCert), readFile(http.tlsKey)]);
  createSecureContext({ cert, key }); // throws on a mismatched or malformed pair
  return { cert, key };
}

/**
 * Fastify server options: with a certificate, HTTP/2 over TLS, also answering HTTP/1.1
 * (ALPN decides); without, plain HTTP/1.1. Typed `object` because Fastify's types fix the
 * server kind at compile time, and the app uses only what both kinds share.
 */
export async function serverOptions(http: Config['http']): Promise<object> {
  if (http.tlsCert === '') return {};
  return { http2: true, https: { allowHTTP1: true, ...(await readKeyPair(http)) } };
}
