import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import proxyAddr from '@fastify/proxy-addr';
import { z } from 'zod';
import { errnoCode, SetupError } from './setup-error.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Durations are written as `500ms`, `30s`, `10m`, `24h`, `7d` (or a bare number of seconds). */
const duration = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value * 1000;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `invalid duration "${value}" (use e.g. 30s, 10m, 24h)` });
    return z.NEVER;
  }
  return Number(match[1]) * UNITS[match[2]!]!;
});

/** A retention rule's tag pattern is a regular expression matched against the whole tag. */
const tagPattern = z.string().refine((value) => {
  try {
    new RegExp(value);
    return true;
  } catch {
    return false;
  }
}, 'invalid regular expression');

/**
 * Retention per repository glob (`*` within one path component, `**` across them). A tag
 * is removed only when every condition the rule sets allows it: it does not match
 * `keepTags`, it is not among the `keepLast` most recently pushed of the tags that do
 * not match, and it is older than `deleteOlderThan`. The first matching rule applies.
 */
const retentionRule = z
  .object({
    repositories: z.string().min(1),
    keepLast: z.number().int().nonnegative().optional(),
    deleteOlderThan: duration.optional(),
    keepTags: tagPattern.optional(),
  })
  .strict()
  .refine((rule) => rule.keepLast !== undefined || rule.deleteOlderThan !== undefined, {
    message: 'a retention rule needs keepLast or deleteOlderThan',
  });

/** Lists and mappings come from the environment as JSON text; anything else is left for zod to judge. */
function fromJsonText(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

const jsonList = <T extends z.ZodType>(item: T) => z.preprocess(fromJsonText, z.array(item));

/**
 * Who may do what: the first rule whose repository glob and principals match the caller
 * decides its actions. Principals are user names, `anonymous`, `authenticated` or `*`
 * (everyone), and groups.
 */
const accessRule = z
  .object({
    repositories: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (typeof v === 'string' ? [v] : v)),
    users: z.array(z.string().min(1)).default([]),
    groups: z.array(z.string().min(1)).default([]),
    actions: z.array(z.enum(['pull', 'push', 'delete'])),
  })
  .strict()
  .refine((rule) => rule.users.length + rule.groups.length > 0, { message: 'an access rule needs users or groups' });

const jsonRecord = <T extends z.ZodType>(item: T) => z.preprocess(fromJsonText, z.record(z.string(), item));

/**
 * A registry the pull-through cache mirrors. `name` is the first path component of its
 * cached repositories (`docker.io/library/busybox`), so it follows the repository grammar.
 * The password comes from `password`, the file `passwordFile`, or the environment
 * variable `passwordEnv`.
 */
const upstream = z
  .object({
    name: z.string().regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/, 'expected a repository path component, e.g. docker.io'),
    url: z.string().regex(/^https?:\/\/[^/\s]+\/?$/, 'expected http(s)://host[:port]'),
    username: z.string().default(''),
    password: z.string().default(''),
    passwordFile: z.string().default(''),
    passwordEnv: z.string().default(''),
    tagTtl: duration.default(300_000),
    timeout: duration.default(30_000),
  })
  .strict()
  .transform((u, ctx) => {
    let password = u.password;
    if (u.passwordFile !== '') {
      try {
        password = readFileSync(u.passwordFile, 'utf8').trim();
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: `cannot read ${u.passwordFile} (${errnoCode(err) ?? (err as Error).message})` });
        return z.NEVER;
      }
    }
    return { ...u, url: u.url.replace(/\/$/, ''), password };
  });

/**
 * A webhook receiver: the events it wants (`push`, `pull`, `delete`) in the repositories
 * matching its globs, signed with `secret` (HMAC-SHA256) when one is set. `format:
 * distribution` sends Distribution's (registry:2) envelope instead of Berth's event, and
 * `headers` are added to every delivery (written as Distribution's configuration does,
 * a value or a list of values).
 */
const webhookEndpoint = z
  .object({
    name: z.string().min(1),
    url: z.string().regex(/^https?:\/\/\S+$/, 'expected an http(s) URL'),
    secret: z.string().default(''),
    events: z.array(z.enum(['push', 'pull', 'delete'])).default(['push', 'pull', 'delete']),
    repositories: z.array(z.string().min(1)).default(['**']),
    timeout: duration.default(10_000),
    format: z.enum(['berth', 'distribution']).default('berth'),
    headers: z
      .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name'), z.union([z.string(), z.array(z.string())]))
      .transform((headers) => Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : value])))
      .default({}),
  })
  .strict();

/**
 * A reverse proxy (or load balancer) whose X-Forwarded-* headers are believed: an address,
 * a CIDR range, or `loopback`, `linklocal`, `uniquelocal` (checked as proxy-addr, which
 * Fastify applies them with, reads them).
 */
const trustedProxy = z.string().refine((value) => {
  try {
    proxyAddr.compile(value);
    return true;
  } catch {
    return false;
  }
}, 'expected an IP address, a CIDR range (10.0.0.0/8, fd00::/8), loopback, linklocal or uniquelocal');


/**
 * `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every interface (as registry:2 writes it).
 * Port 0 picks a free port.
 */
const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, { message: 'expected HOST:PORT, e.g. 0.0.0.0:5000 or :5000', abort: true })
  .refine((addr) => Number(addr.slice(addr.lastIndexOf(':') + 1)) <= 65535, {
    message: 'the port must be between 0 and 65535',
  });

export const configSchema = z
  .object({
    http: z
      .object({
        addr: listenAddress.default('0.0.0.0:5000'),
        tlsCert: z.string().default(''),
        tlsKey: z.string().default(''),
        trustedProxies: jsonList(trustedProxy).default([]),
        hostnames: jsonList(z.string().regex(/^[^\s/?#@]+$/, 'expected HOST or HOST:PORT, e.g. registry.lan:5000')).default([]),
      })
      .strict()
      .refine((http) => (http.tlsCert === '') === (http.tlsKey === ''), {
        message: 'tlsCert and tlsKey go together',
        path: ['tlsKey'],
      })
      .prefault({}),
    storage: z
      .object({
        root: z.string().min(1).default('./data'),
        fsync: z.boolean().default(true),
        delete: z.boolean().default(true),
        readOnly: z.boolean().default(false),
        cacheBytes: z.number().int().nonnegative().default(16 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        idleTimeout: duration.default(86_400_000),
        purgeInterval: duration.default(600_000),
      })
      .strict()
      .prefault({}),
    manifests: z
      .object({
        maxBytes: z.number().int().positive().default(4 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    verify: z
      .object({
        layers: z.enum(['strict', 'enforce', 'warn', 'off']).default('enforce'),
      })
      .strict()
      .prefault({}),
    gc: z
      .object({
        interval: duration.default(3_600_000),
        gracePeriod: duration.default(3_600_000),
        untaggedAfter: z.union([z.literal('never'), duration]).default('never'),
        keepReferrers: z.boolean().default(true),
        retention: jsonList(retentionRule).default([]),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        addr: z.union([z.literal(''), listenAddress]).default(''),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        minFreeBytes: z.number().int().nonnegative().default(1024 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxBlobBytes: z.number().int().nonnegative().default(0),
        maxConcurrentUploads: z.number().int().nonnegative().default(0),
        maxEventLoopDelay: duration.default(1000),
        shutdownTimeout: duration.default(60_000),
        maxConnections: z.number().int().nonnegative().default(0),
        bodyIdleTimeout: duration.default(60_000),
      })
      .strict()
      .prefault({}),
    notifications: z
      .object({
        endpoints: jsonList(webhookEndpoint).default([]),
        retryBackoff: duration.default(1000),
        maxRetryBackoff: duration.default(300_000),
      })
      .strict()
      .refine((n) => new Set(n.endpoints.map((e) => e.name)).size === n.endpoints.length, {
        message: 'endpoint names must be unique',
        path: ['endpoints'],
      })
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        mode: z.enum(['none', 'basic', 'token']).default('none'),
        realm: z.string().min(1).default('Berth'),
        htpasswd: z.string().default(''),
        groups: jsonRecord(z.array(z.string().min(1))).default({}),
        rules: jsonList(accessRule).default([]),
        adminGroups: jsonList(z.string().min(1)).default([]),
        maxLoginFailures: z.number().int().positive().default(10),
        loginFailureWindow: duration.default(300_000),
        tokenRealm: z.string().default(''),
        tokenService: z.string().min(1).default('berth'),
        tokenIssuer: z.string().min(1).default('berth'),
        tokenExpiry: duration.default(300_000),
        tokenLeeway: duration.default(30_000),
        tokenAlgorithm: z.enum(['ES256', 'RS256']).default('ES256'),
        tokenKey: z.string().default(''),
        tokenPublicKey: z.string().default(''),
        tokenJwks: z.string().default(''),
      })
      .strict()
      .refine((auth) => !(auth.tokenPublicKey || auth.tokenJwks) || auth.tokenRealm !== '', {
        message: 'tokenRealm (the external token server) is required with tokenPublicKey or tokenJwks',
        path: ['tokenRealm'],
      })
      .prefault({}),
    ui: z
      .object({
        enabled: z.boolean().default(true),
        sessionExpiry: duration
          .default(43_200_000)
          .refine((ms) => ms >= 60_000, 'a session must last at least a minute (e.g. 12h)'),
      })
      .strict()
      .prefault({}),
    proxy: z
      .object({
        upstreams: jsonList(upstream).default([]),
        defaultUpstream: z.string().default(''),
        local: jsonList(z.string().min(1)).default([]),
        maxBytes: z.number().int().nonnegative().default(0),
      })
      .strict()
      .refine((proxy) => new Set(proxy.upstreams.map((u) => u.name)).size === proxy.upstreams.length, {
        message: 'upstream names must be unique',
        path: ['upstreams'],
      })
      .refine((proxy) => proxy.defaultUpstream === '' || proxy.upstreams.some((u) => u.name === proxy.defaultUpstream), {
        message: 'defaultUpstream must name one of the upstreams',
        path: ['defaultUpstream'],
      })
      .prefault({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
type RawConfig = Record<string, unknown>;

/** The environment variable of a key: http.addr -> BERTH_HTTP_ADDR, uploads.idleTimeout -> BERTH_UPLOADS_IDLE_TIMEOUT. */
function variableName(section: string, key: string): string {
  return `BERTH_${section.toUpperCase()}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Every `section.key` of the schema with its environment variable. */
const VARIABLES: ReadonlyMap<string, string> = new Map(
  Object.entries(configSchema.shape).flatMap(([section, shape]) =>
    Object.keys((shape as unknown as { unwrap(): z.ZodObject }).unwrap().shape).map(
      (key) => [`${section}.${key}`, variableName(section, key)] as const,
    ),
  ),
);

/** Variables Berth reads that are not configuration keys: the file, and `berth read-only`'s credentials. */
const OTHER_VARIABLES = new Set(['BERTH_CONFIG', 'BERTH_ADMIN_USER', 'BERTH_ADMIN_PASSWORD']);

interface Overrides {
  values: RawConfig;
  /** `section.key` -> the variable that set it, to name it in errors. */
  sources: Map<string, string>;
}

/**
 * Environment overrides: every leaf key has a variable BERTH_<SECTION>_<KEY>, with the
 * camelCase key in upper snake case. A `_FILE` suffix reads the value from that file instead.
 */
function envOverrides(env: NodeJS.ProcessEnv): Overrides {
  const values: RawConfig = {};
  const sources = new Map<string, string>();
  for (const [path, name] of VARIABLES) {
    let value = env[name];
    let source = name;
    const file = env[`${name}_FILE`];
    if (value === undefined && file !== undefined) {
      source = `${name}_FILE`;
      try {
        value = readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw new ConfigError(`${source}: cannot read ${file} (${errnoCode(err) ?? (err as Error).message})`);
      }
    }
    if (value === undefined) continue;
    const [section, key] = path.split('.') as [string, string];
    const sectionOut = (values[section] ??= {}) as RawConfig;
    sectionOut[key] = coerce(value);
    sources.set(path, source);
  }
  return { values, sources };
}

/**
 * Refuses BERTH_* variables that Berth does not know, as the file refuses unknown keys:
 * a misspelt variable would otherwise be ignored without a word. `allowed` adds the
 * variables the configuration itself names (upstream passwords' `passwordEnv`).
 */
function checkVariableNames(env: NodeJS.ProcessEnv, allowed: ReadonlySet<string>): void {
  const known = new Set([...VARIABLES.values()].flatMap((name) => [name, `${name}_FILE`]));
  for (const name of Object.keys(env)) {
    if (!name.startsWith('BERTH_') || known.has(name) || OTHER_VARIABLES.has(name) || allowed.has(name)) continue;
    const candidates = [...known, ...OTHER_VARIABLES];
    const nearest = candidates.reduce((best, candidate) => (editDistance(name, candidate) < editDistance(name, best) ? candidate : best));
    const hint = editDistance(name, nearest) <= Math.max(2, Math.floor(name.length / 5)) ? ` (did you mean ${nearest}?)` : '';
    throw new ConfigError(`${name} is not a Berth setting${hint}; every setting is listed in config/default.yaml`);
  }
}

/** Levenshtein distance, for suggesting the variable a typo meant. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Environment values are strings: "true", "false" and numbers become what YAML would make of them. */
function coerce(value: string): unknown {
  if (value === 'true' || value === 'false') return value === 'true';
  return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
}

/** The YAML parser, loaded only to read a configuration file (environment-only setups never need it). */
function parseYaml(text: string): unknown {
  return (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
}

function merge(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value) ? merge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is RawConfig {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A configuration that cannot be used: a file, a key or an environment variable, named in the message. */
export class ConfigError extends SetupError {
  override name = 'ConfigError';
}

/**
 * Parses YAML text (if any) plus environment overrides into a validated, frozen Config.
 * `source` names the file in errors; a value from the environment is named by its variable.
 */
export function parseConfig(yamlText: string | undefined, env: NodeJS.ProcessEnv = {}, source = 'config'): Config {
  let fromFile: unknown = {};
  if (yamlText !== undefined) {
    try {
      fromFile = parseYaml(yamlText) ?? {};
    } catch (err) {
      // The YAML parser's message goes on with a picture of the line; its first line says it all.
      throw new ConfigError(`${source}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!isPlainObject(fromFile)) throw new ConfigError(`${source}: expected a mapping at the top level`);
  }
  const overrides = envOverrides(env);
  const result = configSchema.safeParse(merge(fromFile as RawConfig, overrides.values));
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = issue.path.map(String);
      const variable = overrides.sources.get(path.slice(0, 2).join('.'));
      // A value from the environment is named by its variable, one from the file by its key.
      if (variable !== undefined) {
        const within = path.slice(2).join('.');
        return `${variable}${within === '' ? '' : ` (at ${within})`}: ${issue.message}`;
      }
      return `${source}: ${path.join('.') || '(top level)'}: ${issue.message}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  const config = result.data;
  checkVariableNames(env, new Set(config.proxy.upstreams.map((u) => u.passwordEnv).filter((name) => name !== '')));
  config.storage.root = resolve(config.storage.root);
  for (const u of config.proxy.upstreams) {
    if (u.passwordEnv !== '') u.password = env[u.passwordEnv] ?? '';
  }
  return deepFreeze(config);
}

/** Reads the configuration file (none: the defaults) and the environment. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv): Config {
  if (file === undefined || file === '') return parseConfig(undefined, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    const what =
      code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' ? 'is not readable by this user' : `cannot be read (${code ?? (err as Error).message})`;
    throw new ConfigError(`configuration file ${resolve(file)} ${what}: give --config (or BERTH_CONFIG) a YAML file, such as config/default.yaml`);
  }
  return parseConfig(text, env, file);
}

/** Builds a config for embedding and tests: defaults plus the given sections. */
export function makeConfig(overrides: RawConfig = {}): Config {
  const result = configSchema.parse(overrides);
  result.storage.root = resolve(result.storage.root);
  return deepFreeze(result);
}

function deepFreeze<T>(value: T): T {
  if (isPlainObject(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export function splitAddress(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  return { host: addr.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(addr.slice(at + 1)) };
}
