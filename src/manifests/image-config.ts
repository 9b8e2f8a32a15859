import { tryParseDigest } from '../digest.js';

/** The parts of an image config (OCI image config, Docker image JSON) that Berth reads. */
export interface ImageConfig {
  created: string | null;
  author: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[] | null;
  workingDir: string | null;
  user: string | null;
  labels: Record<string, string>;
  exposedPorts: string[];
  /** `rootfs.diff_ids`, or undefined when the config has no valid `rootfs`. */
  diffIds: string[] | undefined;
  history: HistoryEntry[];
}

export interface HistoryEntry {
  created: string | null;
  createdBy: string | null;
  comment: string | null;
  emptyLayer: boolean;
}

/** Why a config cannot be read as an image config. */
export class ConfigProblem extends Error {}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const strings = (value: unknown): string[] | null =>
  Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : null;
const object = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/**
 * Reads an image config. Throws ConfigProblem when it is not a JSON object or has no
 * usable `rootfs.diff_ids` (a list of digests), which every image config must have;
 * other fields are taken when they have the expected type and are null otherwise.
 */
export function parseImageConfig(bytes: Buffer): ImageConfig {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ConfigProblem(`the image config is not valid JSON: ${(err as Error).message}`);
  }
  const root = object(json);
  if (!root) throw new ConfigProblem('the image config is not a JSON object');
  const config = object(root.config) ?? {};
  const rootfs = object(root.rootfs);
  const diffIds = rootfs === undefined ? undefined : strings(rootfs.diff_ids);
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(object(config.Labels) ?? {})) if (typeof value === 'string') labels[key] = value;
  const history = Array.isArray(root.history) ? root.history.map(object).filter((h) => h !== undefined) : [];
  const image: ImageConfig = {
    created: str(root.created),
    author: str(root.author),
    os: str(root.os),
    architecture: str(root.architecture),
    variant: str(root.variant),
    entrypoint: strings(config.Entrypoint),
    cmd: strings(config.Cmd),
    env: strings(config.Env),
    workingDir: str(config.WorkingDir) || null,
    user: str(config.User) || null,
    labels,
    exposedPorts: Object.keys(object(config.ExposedPorts) ?? {}).sort(),
    diffIds: diffIds ?? undefined,
    history: history.map((h) => ({
      created: str(h.created),
      createdBy: str(h.created_by),
      comment: str(h.comment),
      emptyLayer: h.empty_layer === true,
    })),
  };
  if (rootfs === undefined) throw new ImageConfigError('the image config has no rootfs', image);
  if (!diffIds || diffIds.some((d) => tryParseDigest(d) === undefined)) {
    throw new ImageConfigError('the image config\'s rootfs.diff_ids is not a list of digests', image);
  }
  return image;
}

/** A config that parsed as JSON but lacks a valid `rootfs`; `config` holds what could be read. */
export class ImageConfigError extends ConfigProblem {
  constructor(
    message: string,
    readonly config: ImageConfig,
  ) {
    super(message);
  }
}

/** The `created_by` of each layer: the config's history entries that are not empty layers, in order. */
export function layerHistory(history: readonly HistoryEntry[], layers: number): Array<string | null> {
  const lines = history.filter((h) => !h.emptyLayer).map((h) => h.createdBy);
  return Array.from({ length: layers }, (_, i) => lines[i] ?? null);
}
