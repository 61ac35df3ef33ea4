// TCP options of a connection (setSocketOption / socketOption) and the close with a reset (reset): on an lwsocket
// through the ring (socket commands, Linux 6.7), on a regular fd by setsockopt, on the portable backend through
// node:net. Every value set is read back from the kernel; a reset is seen by the peer as ECONNRESET.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { connectSocket, fdCount, openListener, skipFor, waitFor, withTimeout, type BackendKind } from './helpers.js';
import { createChannel, MegapipeError, type Channel } from '../src/index.js';

interface Server { ch: Channel; port: number; conns: number[]; gone: Set<number>; stop(): Promise<void> }

async function server(backend: BackendKind, lwsocket: boolean): Promise<Server> {
  const ch = createChannel({ backend });
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'L');
  const conns: number[] = [];
  const gone = new Set<number>();
  let listenerGone = false;
  ch.onEvent((ev) => {
    if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
    if (ev.type === 'accept') { conns.push(ev.handle); ch.read(ev.handle); }
    else if (ev.type === 'read' && ev.result === 0 && ch.isOpen(ev.handle)) ch.disconnect(ev.handle);
    else if (ev.type === 'disconnect') gone.add(ev.handle);
  });
  ch.accept(lh, backend === 'uring' ? { lwsocket } : {});
  return {
    ch, port: listener.port, conns, gone,
    stop: async () => { ch.unregister(lh); await waitFor(() => listenerGone, 'the listener to go'); listener.close(); ch.close(); },
  };
}

/** The peer's view of a reset: 'error' ECONNRESET (bytes before it are counted, not required). */
function peerError(s: net.Socket): Promise<string> {
  return withTimeout(new Promise<string>((resolve) => {
    s.on('data', () => {});
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
    s.once('end', () => resolve('end'));
  }), 20_000, 'the peer to see the close');
}

const cases: [BackendKind, boolean][] = [['uring', true], ['uring', false], ['portable', false]];
for (const [backend, lwsocket] of cases) {
  const name = backend === 'uring' ? (lwsocket ? 'uring, lwsocket' : 'uring, regular fd') : 'portable';
  describe(`socket options and reset (${name})`, { skip: skipFor(backend) }, () => {
    it('setSocketOption sets noDelay, keepAlive and keepAliveDelay; socketOption reads them back from the kernel', async (t) => {
      const fds = fdCount();
      const srv = await server(backend, lwsocket);
      const client = await connectSocket(srv.port);
      try {
        await waitFor(() => srv.conns.length === 1, 'the accept');
        const h = srv.conns[0]!;
        const { ch } = srv;
        assert.equal(ch.isLwsocket(h), lwsocket);
        // arguments
        assert.throws(() => ch.setSocketOption(h, 'noDelay', 1 as unknown as boolean), TypeError);
        assert.throws(() => ch.setSocketOption(h, 'keepAliveDelay', 0), RangeError);
        assert.throws(() => ch.setSocketOption(h, 'keepAliveDelay', 32768), RangeError);
        assert.throws(() => ch.setSocketOption(h, 'keepAliveDelay', 1.5), RangeError);
        assert.throws(() => ch.setSocketOption(h, 'bogus' as 'noDelay', true), TypeError);
        assert.throws(() => ch.socketOption(h, 'bogus' as 'noDelay'), TypeError);
        assert.throws(() => ch.setSocketOption(999, 'noDelay', true), (e: unknown) => e instanceof MegapipeError && e.code === 'MP_ERR_BAD_HANDLE');
        if (backend === 'portable') {
          // node:net takes them, and cannot read them back
          ch.setSocketOption(h, 'noDelay', false);
          ch.setSocketOption(h, 'keepAlive', true);
          ch.setSocketOption(h, 'keepAliveDelay', 30);
          assert.throws(() => ch.socketOption(h, 'noDelay'), (e: unknown) => e instanceof MegapipeError && e.code === 'MP_ERR_UNSUPPORTED');
          return;
        }
        if (lwsocket && !ch.features.fixedFdInstall) { t.skip('reading an lwsocket\'s options back needs Linux 6.8 (IORING_OP_FIXED_FD_INSTALL)'); return; }
        assert.equal(ch.socketOption(h, 'noDelay'), 1, 'TCP_NODELAY inherited from the listener');
        assert.equal(ch.socketOption(h, 'keepAlive'), 0);
        const steps: [Parameters<Channel['setSocketOption']>[1], boolean | number, number][] = [
          ['noDelay', false, 0], ['noDelay', true, 1], ['keepAlive', true, 1], ['keepAliveDelay', 77, 77],
          ['keepAliveDelay', 32767, 32767], ['keepAliveDelay', 1, 1], ['keepAlive', false, 0], ['noDelay', false, 0],
        ];
        for (const [option, value, read] of steps) {
          ch.setSocketOption(h, option, value);
          assert.equal(ch.socketOption(h, option), read, `${option} = ${String(value)}`);
        }
        // the connection still works: bytes both ways
        ch.write(h, Buffer.from('still here'));
        const got = await withTimeout(new Promise<string>((r) => client.once('data', (d: Buffer) => r(d.toString()))), 20_000, 'the bytes');
        assert.equal(got, 'still here');
      } finally {
        client.destroy();
        await waitFor(() => srv.gone.size === srv.conns.length, 'connections to go');
        await srv.stop();
      }
      await waitFor(() => fdCount() <= fds, 'fds back to the baseline');
    });

    it('reset closes with an RST: the peer sees ECONNRESET (a plain close is a clean end), queued bytes are discarded', async () => {
      const fds = fdCount();
      const srv = await server(backend, lwsocket);
      const a = await connectSocket(srv.port), b = await connectSocket(srv.port);
      try {
        await waitFor(() => srv.conns.length === 2, 'the accepts');
        const [ha, hb] = srv.conns as [number, number];
        const { ch } = srv;
        // a: a reset with nothing queued (a plain close would be a clean end)
        const aSees = peerError(a);
        ch.reset(ha);
        assert.equal(await aSees, 'ECONNRESET');
        // b: a reset with 8 MiB queued that the peer does not read: not all of it arrives, then ECONNRESET
        b.pause();
        ch.write(hb, Buffer.alloc(8 << 20, 0x61));
        let received = 0;
        const bSees = withTimeout(new Promise<string>((resolve) => {
          b.on('data', (d: Buffer) => { received += d.byteLength; });
          b.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
          b.once('end', () => resolve('end'));
        }), 20_000, 'b to see the reset');
        ch.reset(hb);
        b.resume();
        // (with unread bytes in its receive queue when the RST arrives, Linux reports the end of the stream after
        // them rather than the reset: node:net's own resetAndDestroy gives the same)
        assert.ok(['ECONNRESET', 'end'].includes(await bSees));
        assert.ok(received < 8 << 20, `queued bytes discarded (${received} received)`);
        await waitFor(() => srv.gone.has(ha) && srv.gone.has(hb), 'both handles to go');
        assert.throws(() => ch.reset(ha), MegapipeError);
      } finally {
        a.destroy(); b.destroy();
        await srv.stop();
      }
      await waitFor(() => fdCount() <= fds, 'fds back to the baseline');
    });
  });
}

