import { oci, type ErrorCode } from '../errors.js';

/**
 * The query parameters Berth's routes read, each a single value. Anything else in a
 * query string is ignored, as HTTP servers do.
 */
export interface Query {
  n?: string;
  last?: string;
  digest?: string;
  mount?: string;
  from?: string;
  ns?: string;
  artifactType?: string;
  repository?: string;
  dryRun?: string;
}

const PARAMETERS = ['n', 'last', 'digest', 'mount', 'from', 'ns', 'artifactType', 'repository', 'dryRun'] as const;

/** The code of a parameter's malformed value, which a repeated one is too; UNSUPPORTED for the others. */
const CODES: Partial<Record<keyof Query, ErrorCode>> = {
  n: 'PAGINATION_NUMBER_INVALID',
  digest: 'DIGEST_INVALID',
  mount: 'DIGEST_INVALID',
  from: 'NAME_INVALID',
  repository: 'NAME_INVALID',
};

/**
 * The parameters of a parsed query string (Fastify's parser makes a repeated one an
 * array). A parameter Berth reads may be given once: two values for one page size,
 * digest or repository have no meaning, so they are a 400 naming the parameter.
 */
export function readQuery(parsed: unknown): Query {
  const query: Query = {};
  const raw = (parsed ?? {}) as Record<string, unknown>;
  for (const name of PARAMETERS) {
    if (!Object.hasOwn(raw, name)) continue;
    const value = raw[name];
    if (typeof value !== 'string') throw repeated(name, CODES[name] ?? 'UNSUPPORTED');
    query[name] = value;
  }
  return query;
}

/** The refusal of a parameter given more than once (`where`: of a query string, or of a form). */
export function repeated(name: string, code: ErrorCode = 'UNSUPPORTED', where: 'query parameter' | 'form field' = 'query parameter') {
  return oci(code, `${where} "${name}" is given more than once; give it once`, { parameter: name }, { status: 400 });
}
