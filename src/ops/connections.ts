import { readFileSync } from 'node:fs';

/**
 * File descriptors kept for everything but client connections: the index and its journal,
 * the log, the runtime's own, the writer thread's, upstream and webhook connections.
 */
const RESERVED_FDS = 64;

/**
 * The process's open-files limit (RLIMIT_NOFILE, the soft one), from /proc/self/limits:
 * Node offers no getrlimit. Undefined where that file does not exist (not Linux), cannot
 * be read, or says unlimited.
 */
export function openFilesLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  return match && match[1] !== 'unlimited' ? Number(match[1]) : undefined;
}

/**
 * How many client connections the server keeps open at once: `limits.maxConnections`,
 * or when that is 0, half of what the open-files limit leaves after RESERVED_FDS (a
 * connection may hold a file open besides its socket: a download, an upload), so that
 * connections alone never exhaust the descriptors. 0: no limit (the open-files limit is
 * unknown).
 */
export function connectionLimit(configured: number, openFiles: number | undefined): number {
  if (configured > 0) return configured;
  if (openFiles === undefined) return 0;
  return Math.max(8, Math.floor((openFiles - RESERVED_FDS) / 2));
}
