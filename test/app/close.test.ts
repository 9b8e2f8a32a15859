import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startRegistry } from '../helpers/registry.js';

/** Keep-alive connections stay open for 72 s; closing must not wait for them. */
const WELL_BELOW_KEEP_ALIVE = 30_000;

describe('closing the registry', () => {
  it.each(['a response the client never read', 'a refused upload chunk whose body was still arriving'])(
    'does not wait for keep-alive connections after %s',
    async (variant) => {
      const reg = await startRegistry();
      const blob = Buffer.from('0123456789');
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      await fetch(`${reg.url}/v2/a/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
      const session = await fetch(`${reg.url}/v2/a/blobs/uploads/`, { method: 'POST' });
      if (variant.startsWith('a response')) {
        await fetch(`${reg.url}/v2/a/blobs/${digest}`);
      } else {
        const refused = await fetch(`${reg.url}${session.headers.get('location')}`, {
          method: 'PATCH',
          body: Buffer.alloc(100_000),
          headers: { 'Content-Range': '5-100004' },
        });
        expect(refused.status).toBe(416);
      }
      const started = Date.now();
      await reg.close();
      expect(Date.now() - started).toBeLessThan(WELL_BELOW_KEEP_ALIVE);
    },
  );
});
