import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authorizer } from '../auth/index.js';
import type { Config } from '../config.js';
import { oci } from '../errors.js';
import type { Lifecycle } from '../gc/service.js';
import type { Maintenance } from '../ops/maintenance.js';
import { validateRepositoryName } from '../names.js';
import { readQuery, type Query } from './query.js';

/** `?dryRun=true` (also `1` or an empty value) asks for a plan only. */
function dryRun(query: Query): boolean {
  const value = query.dryRun;
  return value !== undefined && value !== 'false' && value !== '0';
}

/**
 * Berth's admin API under /_berth/admin (registered with that prefix): storage usage,
 * garbage collection, repository removal and read-only mode. Every request needs `admin` access.
 */
export async function adminRoutes(
  app: FastifyInstance,
  opts: { lifecycle: Lifecycle; authorizer: Authorizer; config: Config; maintenance: Maintenance },
) {
  app.addHook('onRequest', async (request: FastifyRequest) => {
    await opts.authorizer.authorize(request, { repositories: [], catalog: false, admin: true });
  });

  app.get('/usage', async (request, reply) => {
    const repository = readQuery(request.query).repository || undefined;
    if (repository !== undefined) validateRepositoryName(repository);
    const usage = await opts.lifecycle.usage(repository);
    if (!usage) throw oci('NAME_UNKNOWN', `repository "${repository}" is not known`, { name: repository });
    return reply.send(usage);
  });

  app.post('/gc', async (request, reply) => {
    const report = await opts.lifecycle.collect({ dryRun: dryRun(readQuery(request.query)) });
    request.log.info(
      { dryRun: report.dryRun, manifests: report.manifests.length, tags: report.tags.length, reclaimedBytes: report.reclaimedBytes },
      'garbage collection requested',
    );
    return reply.send(report);
  });

  app.delete('/repositories/*', async (request, reply) => {
    const name = validateRepositoryName((request.params as { '*': string })['*']);
    const plan = dryRun(readQuery(request.query));
    if (!plan && !opts.config.storage.delete) throw oci('UNSUPPORTED', 'deletes are disabled (storage.delete)');
    const removal = opts.lifecycle.removeRepository(name, { dryRun: plan });
    if (!removal) throw oci('NAME_UNKNOWN', `repository "${name}" is not known`, { name });
    request.log.info({ ...removal }, plan ? 'repository removal planned' : 'repository removed');
    return reply.send(removal);
  });

  app.get('/read-only', async (_request, reply) => reply.send(opts.maintenance.status()));

  app.put('/read-only', async (request, reply) => {
    const body = request.body as { readOnly?: unknown; reason?: unknown } | undefined;
    if (typeof body?.readOnly !== 'boolean') {
      throw oci('UNSUPPORTED', 'expected a JSON body {"readOnly": true|false, "reason": "…"}', undefined, { status: 400 });
    }
    const reason = typeof body.reason === 'string' && body.reason !== '' ? body.reason : 'admin API';
    opts.maintenance.set(body.readOnly, reason);
    request.log.warn({ ...opts.maintenance.status() }, body.readOnly ? 'read-only mode on' : 'read-only mode off');
    return reply.send(opts.maintenance.status());
  });
}
