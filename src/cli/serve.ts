import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { serve } from '../server.js';

const HELP = `usage: berth serve [--config FILE] [--check-config]

  --config FILE   YAML configuration (also BERTH_CONFIG); see config/default.yaml
  --check-config  validate the configuration, print it, and exit
Environment variables override the file: BERTH_HTTP_ADDR, BERTH_STORAGE_ROOT, …`;

export async function serveCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number | 'running'> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'check-config': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig(values.config ?? env.BERTH_CONFIG, env);
  if (values['check-config']) {
    // Upstream passwords and webhook signing secrets are shown only as set or not.
    const secret = (key: string) => key === 'password' || key === 'secret';
    console.log(JSON.stringify(config, (key, value: unknown) => (secret(key) && value !== '' ? '(set)' : value), 2));
    console.log('configuration is valid');
    return 0;
  }
  await serve(config);
  return 'running';
}
