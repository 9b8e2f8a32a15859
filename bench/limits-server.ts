// The bare server behind `npm run bench -- limits`: PUT /upload hashes the body and
// discards it; GET /download streams a 1 GiB file in 1 MiB chunks; GET or HEAD
// /manifest answers a small JSON body from memory, as a registry's hottest read does.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, file] = process.argv.slice(2) as [string, string];
const chunk = randomBytes(1024 * 1024);
writeFileSync(file, Buffer.concat(Array.from({ length: 1024 }, () => chunk)));

const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 37 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'b'.repeat(64)}`, size: 65536 }],
  }),
);

createServer((req, res) => {
  if (req.url === '/manifest') {
    res.writeHead(200, {
      'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
      'Content-Length': manifest.length,
      'Docker-Content-Digest': `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
    });
    res.end(req.method === 'HEAD' ? undefined : manifest);
  } else if (req.url === '/upload') {
    const hash = createHash('sha256');
    req.on('data', (data: Buffer) => hash.update(data));
    req.on('end', () => res.end(hash.digest('hex')));
  } else {
    res.setHeader('Content-Length', 1024 * 1024 * 1024);
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
  }
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
