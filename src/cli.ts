#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { serve } from './server.js';

const USAGE = `usage: berth serve [--config FILE] [--check-config]
       berth --version

  serve           run the registry (default: 0.0.0.0:5000, data under ./data)
  --config FILE   YAML configuration (also BERTH_CONFIG); see config/default.yaml
  --check-config  validate the configuration, print it, and exit
Environment variables override the file: BERTH_HTTP_ADDR, BERTH_STORAGE_ROOT, …`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'check-config': { type: 'boolean' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.version) {
    console.log(version());
    return 0;
  }
  const command = positionals[0] ?? (values['check-config'] ? 'serve' : undefined);
  if (values.help || command !== 'serve') {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const config = loadConfig(values.config ?? process.env.BERTH_CONFIG, process.env);
  if (values['check-config']) {
    console.log(JSON.stringify(config, null, 2));
    console.log('configuration is valid');
    return 0;
  }
  await serve(config);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error(err instanceof ConfigError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? `berth: ${(err as Error).message}` : err);
    process.exit(1);
  },
);
