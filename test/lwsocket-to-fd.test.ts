// toFd: an lwsocket becomes a regular fd (IORING_OP_FIXED_FD_INSTALL) that legacy code wraps in
// `new net.Socket({fd})`. Bytes received before the conversion arrive as read events, bytes queued before it are sent
// first, the handle then leaves the channel (disconnect event), and the fd carries the rest of the conversation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { BACKENDS, connectSocket, fdCount, openListener, prng, randomBytes, skipFor, waitFor, withTimeout } from './helpers.js';
import { createChannel, MegapipeError, type Channel } from '../src/index.js';

/** Reads exactly `n` bytes from `s` (bounded by `ms`). */
function readN(s: net.Socket, n: number, ms = 30000): Promise<Buffer> {
  return withTimeout(new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d); got += d.byteLength;
      if (got >= n) { s.off('data', onData); s.pause(); resolve(Buffer.concat(parts)); }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.resume();
  }), ms, `reading ${n} bytes`);
}

for (const backend of BACKENDS) {
  describe(`toFd (${backend})`, { skip: skipFor(backend) }, () => {
    if (backend === 'portable') {
      it('rejects with MP_ERR_UNSUPPORTED (no lwsockets to convert)', async () => {
        const ch = createChannel({ backend });
        const listener = await openListener(backend);
        const lh = ch.register(listener);
        let conn = -1, gone = 0;
        ch.onEvent((ev) => {
          if (ev.type === 'accept') { conn = ev.handle; ch.read(conn); }
          if (ev.type === 'read' && ev.result === 0) ch.disconnect(ev.handle);
          if (ev.type === 'disconnect') gone++;
        });
        ch.accept(lh);
        const s = await connectSocket(listener.port);
        try {
          await waitFor(() => conn >= 0, 'the accept');
          await assert.rejects(ch.toFd(conn), (e: unknown) => e instanceof MegapipeError && e.code === 'MP_ERR_UNSUPPORTED');
        } finally {
          s.destroy();
          ch.unregister(lh);
          await waitFor(() => gone === 2, 'handles to go');
          listener.close(); ch.close();
        }
      });
      it('converting a real lwsocket', { skip: 'toFd needs io_uring direct descriptors (lwsockets); the portable backend\'s connections are node:net sockets already' }, () => {});
      return;
    }

    const run = async (lwsocket: boolean) => {
      const ch: Channel = createChannel({ backend });
      if (lwsocket && !ch.features.fixedFdInstall) { ch.close(); return 'skip'; }
      const rand = prng(lwsocket ? 31 : 32);
      const hello = randomBytes(rand, 20_000), greeting = randomBytes(rand, 300_000), later = randomBytes(rand, 1_000_000);
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, received = 0, connGone = false, listenerGone = false, wasLw = false;
      const errors: string[] = [];
      const got: Buffer[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; wasLw = ch.isLwsocket(conn); ch.read(conn); }
        else if (ev.type === 'read' && ev.result > 0) { got.push(Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result))); received += ev.result; }
        else if (ev.type === 'disconnect') connGone = true;
        else if (ev.type === 'error') errors.push(ev.code!);
      });
      ch.accept(lh, { lwsocket });
      const client = await connectSocket(listener.port);
      let sock: net.Socket | undefined;
      try {
        client.write(hello);
        await waitFor(() => received === hello.byteLength, 'the first message through the channel');
        assert.ok(Buffer.concat(got).equals(hello));
        assert.equal(wasLw, lwsocket);
        // queued before the conversion: sent before the fd is handed over
        ch.write(conn, greeting);
        const fdsBefore = fdCount();
        const fd = await withTimeout(ch.toFd(conn), 10000, 'toFd');
        assert.ok(Number.isInteger(fd) && fd > 2, `fd ${fd}`);
        await waitFor(() => connGone, 'the handle to leave the channel');
        assert.equal(ch.isOpen(conn) && ch.isLwsocket(conn), false);
        if (lwsocket) assert.equal(fdCount(), fdsBefore + 1, 'the conversion adds one fd');
        sock = new net.Socket({ fd, readable: true, writable: true });
        // the client got the greeting (queued through the channel) first
        assert.ok((await readN(client, greeting.byteLength)).equals(greeting));
        // then both directions through the fd, verified
        const echoBack = readN(sock, later.byteLength, 60000);
        client.write(later);
        const atServer = await echoBack;
        assert.ok(atServer.subarray(0, later.byteLength).equals(later), 'client → fd bytes');
        const toClient = readN(client, later.byteLength, 60000);
        sock.write(atServer);
        assert.ok((await toClient).equals(later), 'fd → client bytes');
        assert.deepEqual(errors, []);
        return 'ok';
      } finally {
        sock?.destroy();
        client.destroy();
        ch.unregister(lh);
        await waitFor(() => listenerGone, 'the listener handle to go');
        listener.close(); ch.close();
      }
    };

    it('an lwsocket becomes a regular fd that node:net drives; bytes verified both ways', async (t) => {
      if (await run(true) === 'skip') t.skip('this kernel lacks IORING_OP_FIXED_FD_INSTALL (Linux 6.8)');
    });
    it('a regular-fd connection (lwsocket: false) hands over its own fd', async () => {
      assert.equal(await run(false), 'ok');
    });

    it('converting a paused connection mid-stream: every byte arrives once, in order, across the handover', async (t) => {
      const ch: Channel = createChannel({ backend });
      if (!ch.features.fixedFdInstall) { ch.close(); t.skip('this kernel lacks IORING_OP_FIXED_FD_INSTALL (Linux 6.8)'); return; }
      // three parts: the first is read as events until the pause, the second is in flight while the connection is
      // converted, the third is sent after the handle has left the channel, so some bytes always cross through the fd
      // (however much of the first two the channel took before the pause took effect)
      const data = randomBytes(prng(33), 2 * 1024 * 1024);
      const cut1 = 1024 * 1024, cut2 = 1536 * 1024;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, viaChannel = 0, paused = false, connGone = false, listenerGone = false;
      const parts: Buffer[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; ch.read(conn); }
        else if (ev.type === 'read' && ev.result > 0) {
          parts.push(Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result)));
          viaChannel += ev.result;
          if (!paused && viaChannel >= 100_000) { paused = true; ch.pause(conn); }
        } else if (ev.type === 'disconnect') connGone = true;
      });
      ch.accept(lh);
      const client = await connectSocket(listener.port);
      let sock: net.Socket | undefined;
      try {
        client.write(data.subarray(0, cut1));
        await waitFor(() => paused, 'the pause');
        client.write(data.subarray(cut1, cut2));
        const fd = await withTimeout(ch.toFd(conn), 10000, 'toFd');
        await waitFor(() => connGone, 'the handle to leave the channel');
        client.write(data.subarray(cut2));
        sock = new net.Socket({ fd, readable: true, writable: true });
        const rest = await readN(sock, data.byteLength - viaChannel, 30000);
        const all = Buffer.concat([...parts, rest]);
        assert.equal(all.byteLength, data.byteLength, `${viaChannel} B as read events + ${rest.byteLength} B through the fd`);
        assert.ok(all.equals(data), 'no byte lost, duplicated or reordered');
      } finally {
        sock?.destroy();
        client.destroy();
        ch.unregister(lh);
        await waitFor(() => listenerGone, 'the listener handle to go');
        listener.close(); ch.close();
      }
    });
  });
}
