// Receiving paused by the high-water mark resumes at the low-water mark, not as soon as the queue is back under the
// high-water mark (the hysteresis channel.ts promises: "receiving on the connection pauses until they fall to
// limits.lowWaterMark"). Sends go one 16 KiB chunk at a time, so a 48 KiB write against a 32 KiB mark passes through
// 32 KiB and 16 KiB queued before 0: bytes the peer sent before must not be delivered at either.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, connectSocket, openListener, readAll, skipFor, tcpQueues, waitFor, closeListenerAndChannel } from './helpers.js';
import { createChannel } from '../src/index.js';

for (const backend of BACKENDS) {
  describe(`receiving resumes at the low-water mark (${backend})`, { skip: skipFor(backend) }, () => {
    it('no read event while more than lowWaterMark bytes are queued after write() returned false', async () => {
      const ch = createChannel({ backend, limits: { highWaterMark: 32768, lowWaterMark: 8192, sendChunkBytes: 16384 } });
      const lwm = ch.limits.lowWaterMark;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, listenerGone = false, gone = false;
      const pendingAtRead: number[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') conn = ev.handle;
        else if (ev.type === 'read' && ev.result > 0) pendingAtRead.push(ch.pendingBytes(ev.handle));
        else if (ev.type === 'disconnect') gone = true;
      });
      ch.accept(lh, { count: 1 });
      const s = await connectSocket(listener.port);
      try {
        await waitFor(() => conn >= 0, 'the connection');
        const all = readAll(s, 20000);
        s.write('the peer spoke first');
        // the peer's bytes wait in the server's socket before reading is asked for
        await waitFor(() => (tcpQueues(listener.port, s.localPort!)?.rx ?? 0) > 0, 'the request in the server socket');
        ch.read(conn);
        const ok = ch.write(conn, Buffer.alloc(49152, 0x7a));
        assert.equal(ok, false, 'above the high-water mark');
        await waitFor(() => pendingAtRead.length > 0, 'the request delivered');
        assert.ok(pendingAtRead.every((p) => p <= lwm), `read events came with ${pendingAtRead.join(', ')} B queued (low-water mark ${lwm})`);
        ch.disconnect(conn);
        assert.equal((await all).byteLength, 49152);
        await waitFor(() => gone, 'the connection to go');
      } finally {
        s.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });
  });
}
