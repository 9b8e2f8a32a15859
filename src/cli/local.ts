import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { splitAddress, type Config } from '../config.js';

export interface LocalAnswer {
  status: number;
  body: string;
}

/** The URL of the Berth of `config` on this machine: its own address, or loopback when it listens on every interface. */
export function localOrigin(config: Config): { origin: string; host: string; port: number; tls: boolean } {
  const { host, port } = splitAddress(config.http.addr);
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const tls = config.http.tlsCert !== '';
  return { origin: `${tls ? 'https' : 'http'}://${local.includes(':') ? `[${local}]` : local}:${port}`, host: local, port, tls };
}

/**
 * One request to the local server, over HTTPS when TLS is configured (the certificate is
 * not checked: this is the local server). Rejects when nothing answers.
 */
export function localRequest(
  config: Config,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<LocalAnswer> {
  const { host, port, tls } = localOrigin(config);
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      {
        host,
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        timeout: 5000,
        agent: false,
        ...(tls && { rejectUnauthorized: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}
