import { join } from 'node:path';
import type { Config } from '../config.js';
import type { MetadataIndex } from '../db/index.js';
import { Authenticator } from './authenticate.js';
import { allowEverything, RuleAuthorizer, type Authorizer } from './authorizer.js';
import type { ChallengeScheme } from './challenge.js';
import { PasswordVerifier } from './credentials.js';
import { AccessRules } from './rules.js';
import { SessionStore, SignIn } from './sessions.js';
import { LoginThrottle } from './throttle.js';
import { TokenServer } from './token-server.js';
import type { TokenSigner, TokenVerifier } from './tokens.js';
import { HtpasswdUsers, UserTable, type UserDirectory } from './users.js';

export type { AccessRequest, Action } from './access.js';
export { UNRESTRICTED, type Authorizer, type CallerInfo, type Grant } from './authorizer.js';
export type { TokenRequest, TokenResponse } from './token-server.js';
export { TokenServer } from './token-server.js';

export interface Auth {
  authorizer: Authorizer;
  /** Berth's own token endpoint: in mode token, unless an external issuer is configured. */
  tokenServer?: TokenServer;
  /** The web UI's sign-in: in modes basic and token while the UI is enabled. */
  signIn?: SignIn;
}

/** Where the signing key lives unless `auth.tokenKey` names one. */
export function defaultTokenKeyPath(config: Config): string {
  return join(config.storage.root, 'token-signing-key.pem');
}

/**
 * Builds authentication and authorization from the configuration: mode none allows
 * everything; basic and token check users (the index's user table, or an htpasswd file)
 * and the access rules.
 */
export async function createAuth(config: Config, index: MetadataIndex, log: { warn(msg: string): void }): Promise<Auth> {
  const auth = config.auth;
  if (auth.mode === 'none') return { authorizer: allowEverything };

  const users: UserDirectory = auth.htpasswd
    ? new HtpasswdUsers(auth.htpasswd, (err) => log.warn(`htpasswd file: ${err.message}`))
    : new UserTable(index.database);
  const throttle = new LoginThrottle(auth.maxLoginFailures, auth.loginFailureWindow);
  const rules = new AccessRules(auth.rules);

  let tokens: { verifier: TokenVerifier; own: boolean } | undefined;
  let signer: TokenSigner | undefined;
  if (auth.mode === 'token') {
    // The JWT library is loaded only by registries that use tokens (it costs memory at idle).
    const { loadSigningKey, TokenSigner, TokenVerifier } = await import('./tokens.js');
    if (auth.tokenPublicKey || auth.tokenJwks) {
      const source = auth.tokenJwks ? { jwksUrl: auth.tokenJwks } : { publicKeyFile: auth.tokenPublicKey };
      tokens = { verifier: TokenVerifier.external(source, auth.tokenIssuer, auth.tokenService, auth.tokenLeeway), own: false };
    } else {
      const key = loadSigningKey(auth.tokenKey || defaultTokenKeyPath(config), auth.tokenAlgorithm, {
        generate: auth.tokenKey === '',
        warn: (message) => log.warn(message),
      });
      signer = new TokenSigner(key, auth.tokenAlgorithm, auth.tokenIssuer, auth.tokenService, auth.tokenExpiry);
      tokens = {
        verifier: TokenVerifier.own(signer, auth.tokenAlgorithm, auth.tokenIssuer, auth.tokenService, auth.tokenLeeway),
        own: true,
      };
    }
  }

  const sessions = config.ui.enabled ? new SessionStore(index.database, config.ui.sessionExpiry) : undefined;
  const authenticator = new Authenticator(users, new PasswordVerifier(users, throttle), auth.groups, tokens, sessions);
  const challenge = (origin: string): ChallengeScheme =>
    auth.mode === 'basic'
      ? { scheme: 'basic', realm: auth.realm }
      : { scheme: 'bearer', realm: auth.tokenRealm || `${origin}/token`, service: auth.tokenService };
  return {
    authorizer: new RuleAuthorizer(authenticator, rules, auth.adminGroups, challenge),
    ...(sessions && { signIn: new SignIn(sessions, authenticator, users) }),
    ...(signer && {
      tokenServer: new TokenServer(authenticator, rules, auth.adminGroups, signer, auth.tokenService, auth.realm),
    }),
  };
}
