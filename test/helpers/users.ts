import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPassword, UserTable } from '../../src/auth/users.js';
import { MetadataIndex } from '../../src/db/index.js';

export interface SeedUser {
  name: string;
  password: string;
  groups?: string[];
}

/** Adds users to the index of a data directory, as `berth user add` does. */
export async function seedUsers(dataDir: string, users: readonly SeedUser[]): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const hashes = await Promise.all(users.map((u) => hashPassword(u.password)));
  const index = new MetadataIndex(join(dataDir, 'index.db'), { durable: false });
  try {
    const table = new UserTable(index.database);
    users.forEach((u, i) => table.add(u.name, hashes[i]!, u.groups ?? []));
  } finally {
    index.close();
  }
}

export const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
