import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config.js';
import { errnoCode, SetupError } from '../setup-error.js';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads `http.tlsCert` and `http.tlsKey`, refusing a pair that does not belong together. */
export async function readKeyPair(http: Config['http']): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readPem('tlsCert', http.tlsCert), readPem('tlsKey', http.tlsKey)]);
  try {
    createSecureContext({ cert, key }); // throws on a mismatched or malformed pair
  } catch (err) {
    throw new SetupError(`http.tlsCert ${http.tlsCert} and http.tlsKey ${http.tlsKey} cannot be used together: ${(err as Error).message}`);
  }
  return { cert, key };
}

async function readPem(key: 'tlsCert' | 'tlsKey', file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EACCES') {
      const uid = process.getuid?.();
      throw new SetupError(
        `http.${key} ${file} is not readable by this user (uid ${uid}): make it readable for it (chown ${uid} ${file}, or \`berth cert self-signed --owner ${uid}\` when making it)`,
      );
    }
    const what = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory, not a PEM file' : `cannot be read (${code ?? (err as Error).message})`;
    throw new SetupError(`http.${key} ${file} ${what}`);
  }
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
