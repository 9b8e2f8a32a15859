#!/usr/bin/env node
import { SetupError } from './setup-error.js';
import { serveCommand } from './cli/serve.js';
import { userCommand } from './cli/user.js';
import { duCommand } from './cli/du.js';
import { fsckCommand } from './cli/fsck.js';
import { gcCommand } from './cli/gc.js';
import { repoCommand } from './cli/repo.js';
import { certCommand } from './cli/cert.js';
import { healthcheckCommand } from './cli/healthcheck.js';
import { VERSION } from './version.js';
import { readOnlyCommand } from './cli/read-only.js';

/** A subcommand: receives its own arguments, returns the exit code (or never, for servers). */
export type Command = (args: string[], env: NodeJS.ProcessEnv) => Promise<number | 'running'>;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  serve: { run: serveCommand, summary: 'run the registry (default: 0.0.0.0:5000, data under ./data)' },
  user: { run: userCommand, summary: 'user add|passwd|groups|remove|list|import: manage registry users' },
  gc: { run: gcCommand, summary: 'collect garbage now (--dry-run: only show what would go)' },
  du: { run: duCommand, summary: 'storage used per repository, shared and reclaimable bytes' },
  fsck: { run: fsckCommand, summary: 'verify every blob and the index (--repair to fix)' },
  repo: { run: repoCommand, summary: 'repo rm NAME: delete a repository' },
  cert: { run: certCommand, summary: 'cert self-signed --host NAME: a CA and server certificate for TLS' },
  healthcheck: { run: healthcheckCommand, summary: 'exit 0 when the local server is ready (/readyz), 1 otherwise' },
  'read-only': { run: readOnlyCommand, summary: 'read-only on|off|status [--reason TEXT]: maintenance mode of the local server' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)}${c.summary}`);
  return `usage: berth <command> [options]      berth <command> --help for its options
       berth --version

commands:
${lines.join('\n')}`;
}

async function main(argv: string[]): Promise<number | 'running'> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    console.log(VERSION);
    return 0;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    console.log(usage());
    return name === '--help' || name === '-h' ? 0 : 2;
  }
  return command.run(rest, process.env);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 'running') process.exit(code);
  },
  (err: unknown) => {
    // A setup mistake (or a wrong option) is told in a line per problem; anything else is a bug, with its stack.
    const known = err instanceof SetupError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (known) for (const line of (err as Error).message.split('\n')) console.error(`berth: ${line}`);
    else console.error(err);
    process.exit(1);
  },
);
