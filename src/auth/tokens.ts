import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SignJWT, calculateJwkThumbprint, createRemoteJWKSet, exportJWK, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { USER_AGENT } from '../version.js';
import type { ResourceAccess } from './scope.js';

export type SigningAlgorithm = 'ES256' | 'RS256';

/** What a verified token says: who it was issued to and what it grants. */
export interface TokenClaims {
  subject: string;
  access: ResourceAccess[];
}

/**
 * The private key Berth signs its tokens with. An existing file is used as it is (it
 * must suit the algorithm); a missing one is generated, when `generate` allows, and
 * created with mode 0600 by a hard link from a fully written temporary file, so a
 * concurrent start or a crash never leaves a partial or world-readable key.
 */
export function loadSigningKey(
  file: string,
  algorithm: SigningAlgorithm,
  options: { generate: boolean; warn?: (message: string) => void },
): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
    if ((statSync(file).mode & 0o077) !== 0) options.warn?.(`token signing key ${file} is readable by other users; chmod 600 it`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !options.generate) throw err;
    pem = writeNewKey(file, algorithm);
  }
  const key = createPrivateKey(pem);
  const fits =
    algorithm === 'ES256'
      ? key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      : key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  if (!fits) throw new Error(`token signing key ${file} does not suit ${algorithm} (ES256: EC P-256; RS256: RSA of 2048 bits or more)`);
  return key;
}

function writeNewKey(file: string, algorithm: SigningAlgorithm): string {
  const { privateKey } =
    algorithm === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 3072 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, file);
  } catch (err) {
    // Another process created the key first: use that one.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(temp, { force: true });
  }
  const dirFd = openSync(dirname(file), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return pem;
}

/** Issues Berth's short-lived registry tokens (JWTs in the Docker token format). */
export class TokenSigner {
  private keyId: Promise<string>;

  constructor(
    private readonly key: KeyObject,
    private readonly algorithm: SigningAlgorithm,
    private readonly issuer: string,
    private readonly service: string,
    private readonly lifetimeMs: number,
  ) {
    this.keyId = exportJWK(createPublicKey(key)).then((jwk) => calculateJwkThumbprint(jwk));
  }

  get publicKey(): KeyObject {
    return createPublicKey(this.key);
  }

  async sign(subject: string, access: ResourceAccess[]): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const issuedAt = new Date();
    const seconds = Math.floor(issuedAt.getTime() / 1000);
    const expiresIn = Math.max(1, Math.round(this.lifetimeMs / 1000));
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT', kid: await this.keyId })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.service)
      .setIssuedAt(seconds)
      .setNotBefore(seconds)
      .setExpirationTime(seconds + expiresIn)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresIn, issuedAt };
  }
}

/** Algorithms accepted from external issuers; never `none` or a shared-secret (HS*) one. */
const EXTERNAL_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

/**
 * Verifies registry tokens: signature (Berth's own key, an external issuer's public key
 * or its JWKS), issuer, audience (the service), expiry and not-before, with a leeway for
 * clocks that disagree. Throws on anything invalid.
 */
export class TokenVerifier {
  private constructor(
    private readonly key: KeyObject | JWTVerifyGetKey,
    private readonly algorithms: string[],
    private readonly issuer: string,
    private readonly service: string,
    private readonly leewayMs: number,
  ) {}

  static own(signer: TokenSigner, algorithm: SigningAlgorithm, issuer: string, service: string, leewayMs: number) {
    return new TokenVerifier(signer.publicKey, [algorithm], issuer, service, leewayMs);
  }

  /** An external issuer, by public key (PEM: SPKI or certificate) file or JWKS URL. */
  static external(source: { publicKeyFile?: string; jwksUrl?: string }, issuer: string, service: string, leewayMs: number) {
    const key = source.jwksUrl
      ? createRemoteJWKSet(new URL(source.jwksUrl), { headers: { 'User-Agent': USER_AGENT } })
      : createPublicKey(readFileSync(source.publicKeyFile!, 'utf8'));
    return new TokenVerifier(key, EXTERNAL_ALGORITHMS, issuer, service, leewayMs);
  }

  async verify(token: string): Promise<TokenClaims> {
    const options = {
      algorithms: this.algorithms,
      issuer: this.issuer,
      audience: this.service,
      clockTolerance: Math.round(this.leewayMs / 1000),
      requiredClaims: ['exp'],
    };
    const { payload } =
      typeof this.key === 'function' ? await jwtVerify(token, this.key, options) : await jwtVerify(token, this.key, options);
    return { subject: typeof payload.sub === 'string' ? payload.sub : '', access: accessClaim(payload.access) };
  }
}

/** The `access` claim, keeping only well-formed entries. */
function accessClaim(value: unknown): ResourceAccess[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry: unknown) => {
    const e = entry as Partial<ResourceAccess> | null;
    if (!e || typeof e.type !== 'string' || typeof e.name !== 'string' || !Array.isArray(e.actions)) return [];
    return [{ type: e.type, name: e.name, actions: e.actions.filter((a): a is string => typeof a === 'string') }];
  });
}
