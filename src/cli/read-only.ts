import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { SetupError } from '../setup-error.js';
import { localOrigin, localRequest } from './local.js';

const HELP = `usage: berth read-only on|off|status [--reason TEXT] [--config FILE] [--user NAME] [--password-stdin]

Turns the read-only (maintenance) mode of the Berth of this configuration, on this
machine, on or off, or shows it, through its admin API (/_berth/admin/read-only).

  --reason TEXT     why, shown by status and in the log (with on)
  --config FILE     the server's configuration (also BERTH_CONFIG): its address and TLS
  --user NAME       with auth.mode basic or token: an admin (also BERTH_ADMIN_USER)
  --password-stdin  read that user's password from stdin (else BERTH_ADMIN_PASSWORD)`;

interface ReadOnlyStatus {
  readOnly: boolean;
  since: string;
  reason: string;
}

export async function readOnlyCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      reason: { type: 'string' },
      config: { type: 'string', short: 'c' },
      user: { type: 'string', short: 'u' },
      'password-stdin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [action] = positionals;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1 || !['on', 'off', 'status'].includes(action!)) {
    console.error(HELP);
    return 2;
  }
  const config = loadConfig(values.config ?? env.BERTH_CONFIG, env);
  const headers: Record<string, string> = {};
  const user = values.user ?? env.BERTH_ADMIN_USER;
  if (user !== undefined && user !== '') {
    const password = values['password-stdin'] ? await firstLineOfStdin() : env.BERTH_ADMIN_PASSWORD;
    if (password === undefined) throw new SetupError(`a password for ${user} is needed: --password-stdin, or BERTH_ADMIN_PASSWORD`);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  }
  let body: string | undefined;
  if (action !== 'status') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify({ readOnly: action === 'on', ...(values.reason !== undefined && { reason: values.reason }) });
  }
  const { origin } = localOrigin(config);
  const answer = await localRequest(config, '/_berth/admin/read-only', { method: body === undefined ? 'GET' : 'PUT', headers, body }).catch(
    (err: Error) => {
      throw new SetupError(`no Berth answers at ${origin} (${(err as { code?: string }).code ?? err.message}): is it running, with this configuration?`);
    },
  );
  if (answer.status === 401) {
    throw new SetupError(
      user ? `${origin} refused the credentials of ${user}` : `${origin} asks for credentials: give an admin's with --user NAME and --password-stdin (or BERTH_ADMIN_USER and BERTH_ADMIN_PASSWORD)`,
    );
  }
  if (answer.status === 403) throw new SetupError(`${user ?? 'anonymous'} may not use the admin API of ${origin}: only members of auth.adminGroups may`);
  if (answer.status !== 200) throw new SetupError(`${origin} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
  const state = JSON.parse(answer.body) as ReadOnlyStatus;
  console.log(state.readOnly ? `read-only since ${state.since}${state.reason ? ` (${state.reason})` : ''}` : 'read-write');
  return 0;
}

async function firstLineOfStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/, 1)[0]!;
}
