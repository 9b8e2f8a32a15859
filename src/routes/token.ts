import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TokenResponse, TokenServer } from '../auth/index.js';
import { repeated } from './query.js';

type Params = Record<string, string | string[] | undefined>;

const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : [value].flat());

/** A parameter that has one value: `scope` may be repeated, the others may not. */
function single(params: Params, name: string, where: 'query parameter' | 'form field' = 'query parameter'): string | undefined {
  const value = params[name];
  if (Array.isArray(value)) {
    if (value.length > 1) throw repeated(name, 'UNSUPPORTED', where);
    return value[0];
  }
  return value;
}

function send(reply: FastifyReply, body: TokenResponse) {
  // Tokens are credentials: never cached by anything on the way.
  return reply.headers({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).send(body);
}

/**
 * Berth's token endpoint, `/token`: GET with HTTP Basic credentials (or none, for an
 * anonymous token) and `?service=&scope=…`, as docker does; POST with the OAuth2 password
 * form, as containerd does.
 */
export async function tokenRoutes(app: FastifyInstance, opts: { tokenServer: TokenServer }) {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
    const params: Params = {};
    for (const [key, value] of new URLSearchParams(body as string)) params[key] = [...list(params[key]), value];
    done(null, params);
  });

  app.get('/token', async (request, reply) => {
    const query = request.query as Params;
    const token = await opts.tokenServer.issue({
      authorization: request.headers.authorization,
      address: request.ip,
      service: single(query, 'service'),
      scopes: list(query.scope),
    });
    return send(reply, token);
  });

  app.post('/token', async (request, reply) => {
    const form = (request.body ?? {}) as Params;
    const token = await opts.tokenServer.issue({
      authorization: request.headers.authorization,
      address: request.ip,
      service: single(form, 'service', 'form field'),
      scopes: list(form.scope),
      grantType: single(form, 'grant_type', 'form field') ?? '',
      username: single(form, 'username', 'form field'),
      password: single(form, 'password', 'form field'),
    });
    return send(reply, token);
  });
}
