import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { selfSigned } from '../tls/x509.js';

const HELP = `usage: berth cert self-signed --host NAME [--host NAME…] [--out DIR] [--days N] [--port PORT]

Creates a certificate authority and a server certificate it signs for the given host
names and IP addresses, writes ca.crt, ca.key, server.crt and server.key to DIR
(default ./certs), and prints what to configure in Berth and on each client.

  --host NAME     a DNS name or IP address clients use to reach Berth (repeatable)
  --out DIR       where to write the files (default ./certs)
  --days N        validity in days (default 825)
  --port PORT     the port clients use, for the Docker instructions (default 5000)`;

export async function certCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      host: { type: 'string', multiple: true },
      out: { type: 'string', default: 'certs' },
      days: { type: 'string', default: '825' },
      port: { type: 'string', default: '5000' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const hosts = values.host ?? [];
  const days = Number(values.days);
  if (positionals.length !== 1 || positionals[0] !== 'self-signed' || hosts.length === 0 || !(days > 0) || !/^\d+$/.test(values.port)) {
    console.error(HELP);
    return 2;
  }
  const out = resolve(values.out);
  const { ca, server } = selfSigned(hosts, days);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'ca.crt'), ca.certificate);
  await writeFile(join(out, 'ca.key'), ca.key, { mode: 0o600 });
  await writeFile(join(out, 'server.crt'), server.certificate);
  await writeFile(join(out, 'server.key'), server.key, { mode: 0o600 });
  const [name] = hosts;
  console.log(`wrote ${join(out, 'ca.crt')}, ca.key, server.crt and server.key (valid ${days} days for ${hosts.join(', ')})

In the Berth configuration:
  http:
    tlsCert: ${join(out, 'server.crt')}
    tlsKey: ${join(out, 'server.key')}

On every Docker host (no insecure-registries entry needed):
  sudo mkdir -p /etc/docker/certs.d/${name}:${values.port}
  sudo cp ${join(out, 'ca.crt')} /etc/docker/certs.d/${name}:${values.port}/ca.crt

podman, skopeo and containerd read the same file from /etc/containers/certs.d/${name}:${values.port}/ca.crt.
Keep ca.key offline: it signs certificates every client trusts.`);
  return 0;
}
