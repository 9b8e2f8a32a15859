import { readFileSync, statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { RESERVED_NAMES } from './rules.js';

/** A user as stored: the bcrypt hash of the password and the groups the user belongs to. */
export interface StoredUser {
  name: string;
  hash: string;
  groups: readonly string[];
}

export interface UserListing {
  name: string;
  groups: string[];
  createdAt: number;
  updatedAt: number;
}

/** Where users come from: Berth's own table, or an htpasswd file. */
export interface UserDirectory {
  lookup(name: string): StoredUser | undefined;
}

/** bcrypt's cost factor for new passwords (2^11 rounds: about 0.15 s of CPU on a small server). */
export const BCRYPT_COST = 11;
/** bcrypt reads at most this many bytes of a password. */
const BCRYPT_MAX_BYTES = 72;
const BCRYPT_HASH = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

/** User names: no colon (HTTP Basic splits there), no blanks, none of the rules' reserved words. */
export function validateUserName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(name) || RESERVED_NAMES.has(name)) {
    throw new Error(
      `invalid user name "${name}": use letters, digits, ".", "_", "@", "-" (not "anonymous" or "authenticated")`,
    );
  }
  return name;
}

export async function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new Error('the password must not be empty');
  // Refusing longer ones keeps "the rest is ignored" from surprising anyone.
  if (Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_BYTES) throw new Error(`the password must be at most ${BCRYPT_MAX_BYTES} bytes long`);
  return (await loadBcrypt()).hash(password, BCRYPT_COST);
}

/**
 * bcrypt (native, its work on libuv's thread pool) is loaded when a password is first
 * hashed or checked: a registry without users never needs it.
 */
export async function loadBcrypt(): Promise<typeof import('@node-rs/bcrypt')> {
  return import('@node-rs/bcrypt');
}

export function isBcryptHash(hash: string): boolean {
  return BCRYPT_HASH.test(hash);
}

/** Parses htpasswd text: `name:hash` lines, bcrypt hashes only (htpasswd -B). */
export function parseHtpasswd(text: string, source = 'htpasswd'): Array<{ name: string; hash: string }> {
  const entries: Array<{ name: string; hash: string }> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const colon = trimmed.indexOf(':');
    const name = trimmed.slice(0, colon);
    const hash = trimmed.slice(colon + 1);
    if (colon <= 0 || !isBcryptHash(hash)) {
      throw new Error(`${source} line ${i + 1}: expected name:bcrypt-hash (create it with htpasswd -B)`);
    }
    entries.push({ name: validateUserName(name), hash });
  });
  return entries;
}

/** Users in Berth's index (`berth user …` manages them); read live, so changes apply at once. */
export class UserTable implements UserDirectory {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      user: db.prepare<[string], { name: string; password_hash: string }>(
        'SELECT name, password_hash FROM users WHERE name = ?',
      ),
      groups: db.prepare<[string], { group_name: string }>(
        'SELECT group_name FROM user_groups WHERE user_name = ? ORDER BY group_name',
      ),
      list: db.prepare<[], { name: string; created_at: number; updated_at: number }>(
        'SELECT name, created_at, updated_at FROM users ORDER BY name',
      ),
      insert: db.prepare('INSERT INTO users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)'),
      upsert: db.prepare(
        `INSERT INTO users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at`,
      ),
      setPassword: db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?'),
      remove: db.prepare('DELETE FROM users WHERE name = ?'),
      clearGroups: db.prepare('DELETE FROM user_groups WHERE user_name = ?'),
      addGroup: db.prepare('INSERT OR IGNORE INTO user_groups (user_name, group_name) VALUES (?, ?)'),
    };
  }

  lookup(name: string): StoredUser | undefined {
    const row = this.stmt.user.get(name);
    if (!row) return undefined;
    return { name: row.name, hash: row.password_hash, groups: this.groupsOf(row.name) };
  }

  list(): UserListing[] {
    return this.stmt.list.all().map((row) => ({
      name: row.name,
      groups: this.groupsOf(row.name),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    }));
  }

  /** Adds a user; false if the name is taken. */
  add(name: string, hash: string, groups: readonly string[]): boolean {
    const now = Date.now();
    return this.db.transaction(() => {
      if (this.stmt.user.get(name)) return false;
      this.stmt.insert.run(name, hash, now, now);
      for (const group of groups) this.stmt.addGroup.run(name, group);
      return true;
    })();
  }

  setPassword(name: string, hash: string): boolean {
    return this.stmt.setPassword.run(hash, Date.now(), name).changes > 0;
  }

  /** Replaces the user's groups; false if there is no such user. */
  setGroups(name: string, groups: readonly string[]): boolean {
    return this.db.transaction(() => {
      if (!this.stmt.user.get(name)) return false;
      this.stmt.clearGroups.run(name);
      for (const group of groups) this.stmt.addGroup.run(name, group);
      return true;
    })();
  }

  remove(name: string): boolean {
    return this.stmt.remove.run(name).changes > 0;
  }

  /** Adds or updates the passwords of many users at once (htpasswd import); groups stay. */
  importHashes(entries: ReadonlyArray<{ name: string; hash: string }>): void {
    const now = Date.now();
    this.db.transaction(() => {
      for (const { name, hash } of entries) this.stmt.upsert.run(name, hash, now, now);
    })();
  }

  private groupsOf(name: string): string[] {
    return this.stmt.groups.all(name).map((r) => r.group_name);
  }
}

/**
 * Users from an htpasswd file (bcrypt). The file is read again when it changes, checked
 * at most once a second, so `htpasswd -B` edits apply without a restart. A file that
 * became unreadable or invalid keeps the last good contents.
 */
export class HtpasswdUsers implements UserDirectory {
  private users = new Map<string, string>();
  private mtimeMs = -1;
  private checkedAt = 0;

  constructor(
    private readonly file: string,
    private readonly onError: (err: Error) => void = () => {},
  ) {
    this.reload(true);
  }

  lookup(name: string): StoredUser | undefined {
    this.reload(false);
    const hash = this.users.get(name);
    return hash === undefined ? undefined : { name, hash, groups: [] };
  }

  private reload(strict: boolean): void {
    const now = Date.now();
    if (!strict && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    try {
      const { mtimeMs } = statSync(this.file);
      if (mtimeMs === this.mtimeMs) return;
      const entries = parseHtpasswd(readFileSync(this.file, 'utf8'), this.file);
      this.users = new Map(entries.map((e) => [e.name, e.hash]));
      this.mtimeMs = mtimeMs;
    } catch (err) {
      if (strict) throw err;
      this.onError(err as Error);
    }
  }
}
