import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { hashPassword, parseHtpasswd, UserTable, validateUserName } from '../auth/users.js';
import { loadConfig, type Config } from '../config.js';
import { prepareDataDirectory } from '../ops/data-dir.js';
import { MetadataIndex } from '../db/index.js';

const HELP = `usage: berth user <subcommand> [--config FILE]

  add NAME [--group G]...   create a user (password prompted, or read from stdin)
  passwd NAME               change a user's password (prompted, or read from stdin)
  groups NAME [G]...        replace a user's groups (none: no groups)
  remove NAME               delete a user
  list                      users and their groups
  import FILE               add or update users from a bcrypt htpasswd file (htpasswd -B)

  --password-stdin          read the password from the first line of stdin (the default
                            when stdin is not a terminal); passwords are never arguments
  --config FILE             YAML configuration (also BERTH_CONFIG): users live in the
                            index under storage.root`;

export async function userCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      group: { type: 'string', short: 'g', multiple: true },
      'password-stdin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, ...rest] = positionals;
  if (values.help || sub === undefined) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const config = loadConfig(values.config ?? env.BERTH_CONFIG, env);
  const arity: Record<string, [number, number]> = {
    add: [1, 1],
    passwd: [1, 1],
    groups: [1, Infinity],
    remove: [1, 1],
    list: [0, 0],
    import: [1, 1],
  };
  const bounds = arity[sub];
  if (!bounds || rest.length < bounds[0] || rest.length > bounds[1]) {
    console.error(`berth user: ${bounds ? `wrong arguments for ${sub}` : `unknown subcommand "${sub}"`}\n\n${HELP}`);
    return 2;
  }
  if (config.auth.htpasswd) {
    console.error(`berth user: note: auth.htpasswd is set, so the server reads users from ${config.auth.htpasswd}, not from these`);
  }
  const readPassword = () => password(values['password-stdin'] === true);

  return withUsers(config, async (users) => {
    const [name] = rest;
    switch (sub) {
      case 'add': {
        validateUserName(name!);
        const groups = (values.group ?? []).map(validateGroupName);
        const hash = await hashPassword(await readPassword());
        if (!users.add(name!, hash, groups)) return fail(`user "${name}" already exists (use passwd to change the password)`);
        console.log(`added user ${name}${groups.length > 0 ? ` (groups: ${groups.join(', ')})` : ''}`);
        return 0;
      }
      case 'passwd': {
        if (!users.lookup(name!)) return fail(`no user "${name}"`);
        users.setPassword(name!, await hashPassword(await readPassword()));
        console.log(`changed the password of ${name}`);
        return 0;
      }
      case 'groups': {
        const groups = rest.slice(1).map(validateGroupName);
        if (!users.setGroups(name!, groups)) return fail(`no user "${name}"`);
        console.log(`${name}: ${groups.length > 0 ? groups.join(', ') : '(no groups)'}`);
        return 0;
      }
      case 'remove':
        if (!users.remove(name!)) return fail(`no user "${name}"`);
        console.log(`removed user ${name}`);
        return 0;
      case 'list':
        for (const user of users.list()) console.log(`${user.name}\t${user.groups.join(',')}`);
        return 0;
      case 'import': {
        const entries = parseHtpasswd(readFileSync(name!, 'utf8'), name!);
        users.importHashes(entries);
        console.log(`imported ${entries.length} user${entries.length === 1 ? '' : 's'} from ${name}`);
        return 0;
      }
    }
    return 2;
  }).catch((err: unknown) => {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw err;
    return fail((err as Error).message);
  });
}

function fail(message: string): number {
  console.error(`berth user: ${message}`);
  return 1;
}

function validateGroupName(group: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(group)) throw new Error(`invalid group name "${group}"`);
  return group;
}

async function withUsers<T>(config: Config, body: (users: UserTable) => Promise<T>): Promise<T> {
  await prepareDataDirectory(config.storage.root);
  const index = new MetadataIndex(join(config.storage.root, 'index.db'), { durable: config.storage.fsync });
  try {
    return await body(new UserTable(index.database));
  } finally {
    index.close();
  }
}

/** The new password: from a terminal, typed twice without echo; otherwise the first line of stdin. */
async function password(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/, 1)[0]!;
  }
  const first = await prompt('Password: ');
  const second = await prompt('Retype password: ');
  if (first !== second) throw new Error('the passwords do not match');
  return first;
}

function prompt(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}
