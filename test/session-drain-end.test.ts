// Two Session contracts a mutation pass found unpinned:
// - `drain` comes once the queued bytes are down to the low-water mark (serveChannel: a 'write' event alone is not
//   enough). Sends go one 16 KiB chunk at a time, so a 48 KiB reply against a 32 KiB mark passes 32 and 16 KiB queued;
// - after halfClose(), end() closes the connection once the queued bytes are out (serveNet and serveChannel alike),
//   without waiting for the peer's FIN: a peer that keeps its side open must not keep the connection.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { BACKENDS, connectSocket, openListener, skipFor, waitFor, withTimeout } from './helpers.js';
import { createChannel, serveChannel, serveNet, type SessionFactory } from '../src/index.js';

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

/** On the first byte: 8 MiB (more than loopback buffers hold: still queued), halfClose(), then end() at once. */
function halfThenEnd(closed: { at: number }): SessionFactory {
  return (conn) => {
    let first = true;
    return {
      data() {
        if (!first) return;
        first = false;
        const big = Buffer.alloc(8 * 1024 * 1024, 0x62);
        for (let o = 0; o < big.length; o += 1 << 20) conn.write(big, o, 1 << 20);
        conn.halfClose();
        conn.end();
      },
      end() { /* the peer's EOF would close: it never comes here */ },
      close() { closed.at = Date.now(); },
    };
  };
}

/** A peer that reads everything, sees EOF, and keeps its own side open. */
async function readAllKeepOpen(port: number, closed: { at: number }): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  try {
    let got = 0;
    const eof = new Promise<void>((resolve) => s.on('end', () => resolve()));
    s.on('data', (d: Buffer) => { got += d.byteLength; });
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write('q');
    await withTimeout(eof, 30000, 'EOF');
    assert.equal(got, 8 * 1024 * 1024);
    await waitFor(() => closed.at > 0, 'the server to close the connection without the peer\'s FIN', { ms: 10000 });
  } finally {
    s.destroy();
  }
}

describe('halfClose() then end(): closed once sent, whatever the peer does', () => {
  it('serveNet', async () => {
    const closed = { at: 0 };
    const server = await serveNet(halfThenEnd(closed));
    try { await readAllKeepOpen(server.port, closed); } finally { await server.close(1000); }
  });
  for (const backend of BACKENDS) {
    it(`serveChannel (${backend})`, { skip: skipFor(backend) }, async () => {
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const closed = { at: 0 };
      const server = serveChannel(ch, listener, halfThenEnd(closed));
      try { await readAllKeepOpen(listener.port, closed); } finally { await server.close(1000); listener.close(); ch.close(); }
    });
  }
});
