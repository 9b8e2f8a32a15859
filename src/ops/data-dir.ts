import { constants } from 'node:fs';
import { statSync } from 'node:fs';
import { access, mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, SetupError } from '../setup-error.js';

/** Entries a server writes to; a directory handed over with a plain (not -R) chown still holds them. */
const WRITTEN = ['index.db', 'index.db-wal', 'index.db-shm', 'blobs', 'uploads', 'tmp'];

/**
 * Makes `storage.root` (and any missing parent) and checks that this process may write
 * there, before anything opens it. Every way this fails at startup (a file where the
 * directory should be, another user's directory, a read-only or pseudo file system) is
 * a SetupError saying what to change.
 */
export async function prepareDataDirectory(root: string): Promise<void> {
  await makeDirectory(root, root);
  const probe = join(root, `.berth-write-check-${process.pid}`);
  try {
    await (await open(probe, 'wx')).close();
    await rm(probe);
  } catch (err) {
    throw storageProblem(root, root, err);
  }
  for (const entry of WRITTEN) {
    const path = join(root, entry);
    try {
      await access(path, constants.W_OK);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw storageProblem(root, path, err);
    }
  }
}

/**
 * `mkdir -p`, one level at a time. Node's recursive mkdir never returns where the kernel
 * answers ENOENT for a directory whose parent exists (/proc, /sys): it retries forever.
 */
async function makeDirectory(path: string, root: string): Promise<void> {
  try {
    if ((await stat(path)).isDirectory()) return;
    throw new SetupError(`storage.root ${root}: ${path} is a file, not a directory; set storage.root (BERTH_STORAGE_ROOT) to a directory`);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err instanceof SetupError ? err : storageProblem(root, path, err);
  }
  const parent = dirname(path);
  if (parent !== path) await makeDirectory(parent, root);
  try {
    await mkdir(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EACCES' || code === 'EPERM') {
      const owner = `${process.getuid?.()}:${process.getgid?.()}`;
      throw new SetupError(
        `storage.root ${root} cannot be created: this user (uid ${process.getuid?.()}) may not write to ${parent}; give that to it with \`chown -R ${owner} ${parent}\` (for a bind mount, the host folder) or set storage.root (BERTH_STORAGE_ROOT) to a directory it owns`,
      );
    }
    if (code !== 'EEXIST') throw storageProblem(root, path, err);
  }
}

function storageProblem(root: string, path: string, err: unknown): SetupError {
  const code = errnoCode(err);
  const at = path === root ? `storage.root ${root}` : `storage.root ${root}: ${path}`;
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return new SetupError(
        `${at} is not writable by this user (uid ${uid}): give the directory to it with \`chown -R ${uid}:${gid} ${root}\` (for a bind mount, the host folder) or set storage.root (BERTH_STORAGE_ROOT) to a directory it owns`,
      );
    case 'ENOTDIR':
      return new SetupError(`${at}: a part of this path is a file, not a directory; set storage.root (BERTH_STORAGE_ROOT) to a directory`);
    case 'EROFS':
      return new SetupError(`${at} is on a read-only file system; set storage.root (BERTH_STORAGE_ROOT) to a writable directory`);
    case 'ENOENT':
      return new SetupError(`${at}: this file system does not hold files (such as /proc or /sys); set storage.root (BERTH_STORAGE_ROOT) to a directory on a disk`);
    case 'ENOSPC':
      return new SetupError(`${at}: no space left on the device; free some or set storage.root (BERTH_STORAGE_ROOT) to another disk`);
    default:
      return new SetupError(`${at} cannot be used (${code ?? (err as Error).message}); set storage.root (BERTH_STORAGE_ROOT) to a writable directory`);
  }
}

/**
 * What to tell when the index of an existing data directory does not open for a
 * maintenance command (`berth gc`, `du`, `fsck`, `repo`): mostly, run as another user
 * than the directory's owner. Other errors are returned as they are.
 */
export function indexOpenProblem(root: string, err: unknown): unknown {
  const code = errnoCode(err);
  if (code === undefined || !/^(SQLITE_READONLY|SQLITE_CANTOPEN|SQLITE_PERM|SQLITE_AUTH|EACCES|EPERM)/.test(code)) return err;
  let owner = '';
  try {
    owner = ` (uid ${statSync(root).uid})`;
  } catch {
    // the owner is only a hint
  }
  return new SetupError(`storage.root ${root}: this user (uid ${process.getuid?.()}) may not write its index (${code}); run berth as the owner of the directory${owner}`);
}

