// A Session contract a mutation pass found unpinned: `drain` comes once the queued bytes are down to the low-water mark
// (serveChannel: a 'write' event alone is not enough). Sends go one 16 KiB chunk at a time, so a 48 KiB reply against
// a 32 KiB mark passes 32 and 16 KiB queued. (halfClose() then end(): test/session-half-close.test.ts.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, connectSocket, openListener, skipFor, waitFor } from './helpers.js';
import { createChannel, serveChannel } from '../src/index.js';

for (const backend of BACKENDS) {
  describe(`serveChannel: Session.drain at the low-water mark (${backend})`, { skip: skipFor(backend) }, () => {
    it('drain comes with pendingBytes at or below lowWaterMark', async () => {
      const ch = createChannel({ backend, limits: { highWaterMark: 32768, lowWaterMark: 8192, sendChunkBytes: 16384 } });
      const lwm = ch.limits.lowWaterMark;
      const listener = await openListener(backend);
      const atDrain: number[] = [];
      let wrote: boolean | undefined;
      const server = serveChannel(ch, listener, (conn) => ({
        data() {
          wrote = conn.write(Buffer.alloc(49152, 0x61));
        },
        drain() { atDrain.push(conn.pendingBytes); conn.end(); },
      }));
      const s = await connectSocket(listener.port);
      try {
        s.write('go');
        let got = 0;
        s.on('data', (d: Buffer) => { got += d.byteLength; });
        await waitFor(() => atDrain.length > 0, 'drain');
        assert.equal(wrote, false, 'the write passed the high-water mark');
        assert.ok(atDrain.every((p) => p <= lwm), `drain with ${atDrain.join(', ')} B queued (low-water mark ${lwm})`);
        await waitFor(() => got === 49152, 'the reply');
      } finally {
        s.destroy();
        await server.close(1000);
        listener.close();
        ch.close();
      }
    });
  });
}
