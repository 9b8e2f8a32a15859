import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errnoCode, SetupError } from '../setup-error.js';

const HELP = `usage: berth cert self-signed --host NAME [--host NAME…] [--out DIR] [--days N] [--port PORT] [--owner UID[:GID]]

Creates a certificate authority and a server certificate it signs for the given host
names and IP addresses, writes ca.crt, ca.key, server.crt and server.key to DIR
(default ./certs), and prints what to configure in Berth and on each client.

  --host NAME     a DNS name or IP address clients use to reach Berth (repeatable)
  --out DIR       where to write the files (default ./certs)
  --days N        validity in days (default 825)
  --port PORT     the port clients use, for the Docker instructions (default 5000)
  --owner UID[:GID]
                  give server.crt and server.key to this user (needs root), e.g. 1000:1000
                  for the container image, whose Berth runs as uid 1000`;

export async function certCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      host: { type: 'string', multiple: true },
      out: { type: 'string', default: 'certs' },
      days: { type: 'string', default: '825' },
      port: { type: 'string', default: '5000' },
      owner: { type: 'string' },
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
  const owner = values.owner === undefined ? undefined : parseOwner(values.owner);
  const out = resolve(values.out);
  // The X.509 library is loaded only here: the server never needs it.
  const { selfSigned } = await import('../tls/certificates.js');
  const { ca, server } = await selfSigned(hosts, days);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'ca.crt'), ca.certificate);
  await writeKey(join(out, 'ca.key'), ca.key);
  await writeFile(join(out, 'server.crt'), server.certificate);
  await writeKey(join(out, 'server.key'), server.key);
  if (owner) {
    try {
      for (const file of ['server.crt', 'server.key']) await chown(join(out, file), owner.uid, owner.gid);
    } catch (err) {
      if (errnoCode(err) !== 'EPERM') throw err;
      throw new SetupError(`--owner ${values.owner}: only root may give files to another user; run berth cert with sudo`);
    }
  }
  const [name] = hosts;
  console.log(`wrote ${join(out, 'ca.crt')}, ca.key, server.crt and server.key (valid ${days} days for ${hosts.join(', ')})${owner ? `; server.crt and server.key belong to ${owner.uid}:${owner.gid}` : ''}

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

/** Keys are for their owner's eyes only, also when an older file of that name was readable. */
async function writeKey(file: string, pem: string): Promise<void> {
  await writeFile(file, pem, { mode: 0o600 });
  await chmod(file, 0o600);
}

function parseOwner(owner: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(owner);
  if (!match) throw new SetupError(`--owner ${owner}: expected numeric UID or UID:GID, e.g. 1000:1000`);
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}
