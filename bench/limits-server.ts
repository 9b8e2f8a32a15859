// The bare server behind `npm run bench -- limits`: PUT /upload hashes the body and
// discards it; GET /download streams a 1 GiB file in 1 MiB chunks.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, file] = process.argv.slice(2) as [string, string];
const chunk = randomBytes(1024 * 1024);
writeFileSync(file, Buffer.concat(Array.from({ length: 1024 }, () => chunk)));

createServer((req, res) => {
  if (req.url === '/upload') {
    const hash = createHash('sha256');
    req.on('data', (data: Buffer) => hash.update(data));
    req.on('end', () => res.end(hash.digest('hex')));
  } else {
    res.setHeader('Content-Length', 1024 * 1024 * 1024);
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
  }
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
