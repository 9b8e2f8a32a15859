import { createHash, type Hash } from 'node:crypto';
import { oci } from './errors.js';

/** Supported digest algorithms and the length of their lowercase hex encodings. */
const ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type Algorithm = keyof typeof ALGORITHMS;

export interface Digest {
  algorithm: Algorithm;
  hex: string;
  /** `algorithm:hex` */
  value: string;
}

const DIGEST_SYNTAX = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Parses a digest string or returns undefined if it is not a supported, well-formed digest. */
export function tryParseDigest(value: string): Digest | undefined {
  const match = DIGEST_SYNTAX.exec(value);
  if (!match) return undefined;
  if (!Object.hasOwn(ALGORITHMS, match[1]!)) return undefined;
  const algorithm = match[1] as Algorithm;
  const hex = match[2]!;
  if (hex.length !== ALGORITHMS[algorithm] || !/^[0-9a-f]+$/.test(hex)) return undefined;
  return { algorithm, hex, value };
}

export function parseDigest(value: string | undefined): Digest {
  if (value === undefined || value === '') throw oci('DIGEST_INVALID', 'digest parameter is required');
  const digest = tryParseDigest(value);
  if (!digest) throw oci('DIGEST_INVALID', `invalid or unsupported digest "${value}" (sha256 and sha512 are supported)`);
  return digest;
}

export function looksLikeDigest(value: string): boolean {
  return value.includes(':');
}

export function createDigester(algorithm: Algorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
