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
  /** The browse API and docker search. */
  q?: string;
  tagged?: string;
  page?: string;
}

const PARAMETERS = ['n', 'last', 'digest', 'mount', 'from', 'ns', 'artifactType', 'repository', 'dryRun', 'q', 'tagged', 'page'] as const;

/** The code of a parameter's malformed value, which a repeated one is too; UNSUPPORTED for the others. */
const CODES: Partial<Record<keyof Query, ErrorCode>> = {
  n: 'PAGINATION_NUMBER_INVALID',
  page: 'PAGINATION_NUMBER_INVALID',
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

/** The page size `n`: `fallback` when absent, at most `max`; anything but a whole number from `min` up is a 400. */
export function pageSize(query: Query, fallback: number, max: number, min = 0): number {
  if (query.n === undefined || query.n === '') return fallback;
  if (!/^\d+$/.test(query.n) || Number(query.n) < min) {
    throw oci('PAGINATION_NUMBER_INVALID', `invalid page size n=${query.n}: give a whole number of entries${min > 0 ? ` from ${min}` : ''}`, { n: query.n });
  }
  return Math.min(Number(query.n), max);
}
