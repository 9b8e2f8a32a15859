import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { localOrigin, localRequest } from './local.js';

const HELP = `usage: berth healthcheck [--config FILE] [--live]

Asks the Berth of this configuration, on this machine, whether it is ready (GET /readyz;
with --live only whether it is up, GET /healthz). Exits 0 when it is, 1 otherwise: the
container image's HEALTHCHECK. Speaks HTTPS when http.tlsCert is set (the certificate
is not checked: this is the local server).`;

export async function healthcheckCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, live: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig(values.config ?? env.BERTH_CONFIG, env);
  const path = values.live ? '/healthz' : '/readyz';
  const status = await localRequest(config, path).then(
    (answer) => answer.status,
    (err: Error) => err.message,
  );
  const ok = status === 200;
  (ok ? console.log : console.error)(`${localOrigin(config).origin}${path}: ${status}`);
  return ok ? 0 : 1;
}
