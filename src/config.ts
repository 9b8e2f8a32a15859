import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
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

const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:5000');

export const configSchema = z
  .object({
    http: z
      .object({
        addr: listenAddress.default('0.0.0.0:5000'),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        root: z.string().min(1).default('./data'),
        fsync: z.boolean().default(true),
        delete: z.boolean().default(true),
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
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        mode: z.literal('none').default('none'),
      })
      .strict()
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

/** Environment values are strings; YAML's scalar rules turn "true" and "4096" into their types. */
function coerce(value: string): unknown {
  return /^(true|false|-?\d+(\.\d+)?)$/.test(value) ? parseYaml(value) : value;
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
