import { oci, type RegistryError } from '../errors.js';
import { formatScopes, type ResourceAccess } from './scope.js';

/** How a mode asks for credentials: HTTP Basic, or a Docker token from a realm. */
export type ChallengeScheme = { scheme: 'basic'; realm: string } | { scheme: 'bearer'; realm: string; service: string };

const quoted = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

/** `WWW-Authenticate` for a request that needs `scope`; a token error says why the presented one failed. */
export function wwwAuthenticate(
  scheme: ChallengeScheme,
  scope: ReadonlyArray<ResourceAccess>,
  error?: 'invalid_token' | 'insufficient_scope',
): string {
  if (scheme.scheme === 'basic') return `Basic realm=${quoted(scheme.realm)}, charset="UTF-8"`;
  const params = [`realm=${quoted(scheme.realm)}`, `service=${quoted(scheme.service)}`];
  if (scope.length > 0) params.push(`scope=${quoted(formatScopes(scope))}`);
  if (error) params.push(`error=${quoted(error)}`);
  return `Bearer ${params.join(',')}`;
}

/** 401 UNAUTHORIZED carrying the challenge, with the access that was asked for as the detail. */
export function unauthorized(
  scheme: ChallengeScheme,
  scope: ReadonlyArray<ResourceAccess>,
  message = 'authentication required',
  error?: 'invalid_token' | 'insufficient_scope',
): RegistryError {
  return oci('UNAUTHORIZED', message, scope.length > 0 ? scope : undefined, {
    headers: { 'WWW-Authenticate': wwwAuthenticate(scheme, scope, error) },
  });
}
