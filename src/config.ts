import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { z } from 'zod';

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
  .transform((u) => ({
    ...u,
    url: u.url.replace(/\/$/, ''),
    password: u.passwordFile === '' ? u.password : readFileSync(u.passwordFile, 'utf8').trim(),
  }));

/**
 * A webhook receiver: the events it wants (`push`, `pull`, `delete`) in the repositories
 * matching its globs, signed with `secret` (HMAC-SHA256) when one is set.
 */
const webhookEndpoint = z
  .object({
    name: z.string().min(1),
    url: z.string().regex(/^https?:\/\/\S+$/, 'expected an http(s) URL'),
    secret: z.string().default(''),
    events: z.array(z.enum(['push', 'pull', 'delete'])).default(['push', 'pull', 'delete']),
    repositories: z.array(z.string().min(1)).default(['**']),
    timeout: duration.default(10_000),
  })
  .strict();

const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:5000');

export const configSchema = z
  .object({
    http: z
      .object({
        addr: listenAddress.default('0.0.0.0:5000'),
        tlsCert: z.string().default(''),
        tlsKey: z.string().default(''),
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

/**
 * Environment overrides: every leaf key has a variable BERTH_<SECTION>_<KEY>, with the
 * camelCase key in upper snake case (http.addr -> BERTH_HTTP_ADDR, uploads.idleTimeout ->
 * BERTH_UPLOADS_IDLE_TIMEOUT). A `_FILE` suffix reads the value from that file instead.
 */
export function envOverrides(env: NodeJS.ProcessEnv): RawConfig {
  const out: RawConfig = {};
  for (const [section, shape] of Object.entries(configSchema.shape)) {
    const inner = (shape as unknown as { unwrap(): z.ZodObject }).unwrap().shape;
    for (const key of Object.keys(inner)) {
      const name = `BERTH_${section.toUpperCase()}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
      let value = env[name];
      const file = env[`${name}_FILE`];
      if (value === undefined && file !== undefined) value = readFileSync(file, 'utf8').trim();
      if (value === undefined) continue;
      const sectionOut = (out[section] ??= {}) as RawConfig;
      sectionOut[key] = coerce(value);
    }
  }
  return out;
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

export class ConfigError extends Error {}

/** Parses YAML text (if any) plus environment overrides into a validated, frozen Config. */
export function parseConfig(yamlText: string | undefined, env: NodeJS.ProcessEnv = {}, source = 'config'): Config {
  let fromFile: unknown = {};
  if (yamlText !== undefined) {
    try {
      fromFile = parseYaml(yamlText) ?? {};
    } catch (err) {
      throw new ConfigError(`${source}: ${(err as Error).message}`);
    }
    if (!isPlainObject(fromFile)) throw new ConfigError(`${source}: expected a mapping at the top level`);
  }
  const result = configSchema.safeParse(merge(fromFile as RawConfig, envOverrides(env)));
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
  }
  const config = result.data;
  config.storage.root = resolve(config.storage.root);
  for (const u of config.proxy.upstreams) {
    if (u.passwordEnv !== '') u.password = env[u.passwordEnv] ?? '';
  }
  return deepFreeze(config);
}

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv): Config {
  return parseConfig(file === undefined ? undefined : readFileSync(file, 'utf8'), env, file ?? 'defaults');
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
