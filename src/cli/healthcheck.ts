import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseArgs } from 'node:util';
import { loadConfig, splitAddress } from '../config.js';

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
  const { host, port } = splitAddress(config.http.addr);
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const tls = config.http.tlsCert !== '';
  const path = values.live ? '/healthz' : '/readyz';
  const status = await new Promise<number | string>((resolve) => {
    const options = { host: local, port, path, timeout: 5000, agent: false as const, ...(tls && { rejectUnauthorized: false }) };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
  const ok = status === 200;
  (ok ? console.log : console.error)(`${tls ? 'https' : 'http'}://${local.includes(':') ? `[${local}]` : local}:${port}${path}: ${status}`);
  return ok ? 0 : 1;
}
