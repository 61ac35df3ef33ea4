// write()'s answer at the high-water mark itself: the contract (channel.ts) is "false when the bytes queued … exceed
// limits.highWaterMark", so a write that brings pendingBytes to exactly the mark answers true, one more byte false.
// Random write sizes (channel-flow-control) almost never land on the mark: this test lands on it on purpose.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, connectSocket, openListener, skipFor, waitFor, closeListenerAndChannel } from './helpers.js';
import { createChannel } from '../src/index.js';

for (const backend of BACKENDS) {
  describe(`write() at the high-water mark (${backend})`, { skip: skipFor(backend) }, () => {
    it('true when pendingBytes reaches the mark exactly, false one byte above it', async () => {
      const ch = createChannel({ backend });
      const hwm = ch.limits.highWaterMark;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, listenerGone = false;
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') conn = ev.handle;
      });
      ch.accept(lh, { count: 1 });
      const s = await connectSocket(listener.port);
      try {
        await waitFor(() => conn >= 0, 'the connection');
        // synchronously, in one run: nothing of it can have completed (pendingBytes counts the send in flight)
        const first = ch.write(conn, Buffer.alloc(hwm, 0x61));
        const atMark = ch.pendingBytes(conn);
        const second = ch.write(conn, Buffer.alloc(1, 0x62));
        assert.equal(atMark, hwm, 'pendingBytes is the mark');
        assert.equal(first, true, `write() bringing pendingBytes to exactly the high-water mark (${hwm}) answers true`);
        assert.equal(second, false, 'one byte above the mark answers false');
        ch.disconnect(conn, true);
      } finally {
        s.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });
  });
}
