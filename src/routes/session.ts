import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authorizer, CallerInfo } from '../auth/index.js';
import type { Identity } from '../auth/rules.js';
import { clearedSessionCookie, SESSION_COOKIE, sessionCookie, type Session, type SignIn } from '../auth/sessions.js';
import type { Config } from '../config.js';
import { oci } from '../errors.js';

interface SessionAnswer {
  mode: Config['auth']['mode'];
  user: string | null;
  groups: readonly string[];
  admin: boolean;
  csrfToken: string | null;
}

/** Cookies are Secure when the request came over TLS. */
const secure = (request: FastifyRequest) => request.protocol === 'https';

/**
 * The web UI's sign-in, `/_berth/api/session`: GET says who the session cookie belongs to
 * (and its CSRF token), POST signs in with a user name and password and sets the cookie,
 * DELETE signs out and ends the session on the server.
 */
export async function sessionRoutes(app: FastifyInstance, opts: { config: Config; authorizer: Authorizer; signIn: SignIn | undefined }) {
  const mode = opts.config.auth.mode;
  const isAdmin = (caller: CallerInfo) =>
    opts.authorizer.authorize(caller, { repositories: [], catalog: false, admin: true }).then(
      () => true,
      () => false,
    );
  const answer = (identity: Identity | undefined, session: Session | undefined, admin: boolean): SessionAnswer => ({
    mode,
    user: identity?.kind === 'user' ? identity.name : null,
    groups: identity?.kind === 'user' ? identity.groups : [],
    admin,
    csrfToken: session?.csrf ?? null,
  });

  // Who is signed in changes with every sign-in and sign-out: never cached.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
  });

  app.get('/', async (request) => {
    // Mode none: everyone may do everything, without signing in.
    if (mode === 'none') return answer(undefined, undefined, true);
    const current = opts.signIn?.current(request.headers.cookie);
    if (!current) return answer(undefined, undefined, false);
    return answer(current.identity, current.session, await isAdmin(request));
  });

  app.post('/', { bodyLimit: 16 * 1024 }, async (request, reply) => {
    if (!opts.signIn) {
      throw oci('UNSUPPORTED', 'signing in needs auth.mode basic or token and ui.enabled', undefined, { status: 405 });
    }
    const body = request.body as { username?: unknown; password?: unknown } | undefined;
    if (typeof body?.username !== 'string' || typeof body.password !== 'string' || body.username === '') {
      throw oci('UNSUPPORTED', 'expected a JSON body {"username": "…", "password": "…"}', undefined, { status: 400 });
    }
    const result = await opts.signIn.signIn(body.username, body.password, request.ip);
    // No WWW-Authenticate here: a browser would answer it with its own password dialog.
    if (!result) throw oci('UNAUTHORIZED', 'invalid username or password');
    request.log.info({ user: body.username }, 'signed in');
    reply.header('Set-Cookie', sessionCookie(result.token, opts.signIn.store.expirySeconds, secure(request)));
    const admin = await isAdmin({
      ip: request.ip,
      protocol: request.protocol,
      host: request.host,
      method: 'GET',
      headers: { cookie: `${SESSION_COOKIE}=${result.token}` },
    });
    return answer(result.identity, result.session, admin);
  });

  app.delete('/', async (request, reply) => {
    const current = opts.signIn?.current(request.headers.cookie);
    // Signing out is a change like any other: the session's CSRF token must come with it.
    if (current) await opts.authorizer.authorize(request, { repositories: [], catalog: false });
    opts.signIn?.signOut(request.headers.cookie);
    if (current) request.log.info({ user: current.session.user }, 'signed out');
    return reply.header('Set-Cookie', clearedSessionCookie(secure(request))).code(204).send();
  });
}
