import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BlobFiles } from '../blobstore/files.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { MetadataIndex } from '../db/index.js';
import { Lifecycle } from '../gc/service.js';
import { indexOpenProblem } from '../ops/data-dir.js';

export interface OpenStorage {
  config: Config;
  files: BlobFiles;
  index: MetadataIndex;
  lifecycle: Lifecycle;
  close(): Promise<void>;
}

/**
 * Opens the data directory the configuration names, for the maintenance commands. Safe
 * while a server runs on it: SQLite (WAL) arbitrates the index, and nothing here
 * initializes or empties directories as a starting server does.
 */
export function openStorage(configFile: string | undefined, env: NodeJS.ProcessEnv): OpenStorage {
  const config = loadConfig(configFile ?? env.BERTH_CONFIG, env);
  const dbFile = join(config.storage.root, 'index.db');
  if (!existsSync(dbFile)) throw new ConfigError(`no registry data in ${config.storage.root} (${dbFile} does not exist)`);
  const files = new BlobFiles(config.storage.root, config.storage.fsync);
  let index: MetadataIndex;
  try {
    index = new MetadataIndex(dbFile, { durable: config.storage.fsync });
  } catch (err) {
    throw indexOpenProblem(config.storage.root, err);
  }
  const lifecycle = new Lifecycle(files, index, config);
  return {
    config,
    files,
    index,
    lifecycle,
    async close() {
      await lifecycle.close();
      index.close();
    },
  };
}

/** `1.5 MiB`: binary units, one decimal. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Options every maintenance command takes. */
export const COMMON_OPTIONS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Prints at most `limit` lines of a list, then how many more there were. */
export function printList(lines: string[], limit: number): void {
  for (const line of lines.slice(0, limit)) console.log(line);
  if (lines.length > limit) console.log(`    … and ${lines.length - limit} more (--verbose lists all)`);
}
