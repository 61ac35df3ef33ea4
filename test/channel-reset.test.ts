// Peer reset during a large write: the client aborts (SO_LINGER 0 through socket.resetAndDestroy()) while the server
// is pushing megabytes at it. The server gets an error event (ECONNRESET or EPIPE) for that connection, nothing
// throws, the handle's final event is `disconnect`, and echo connections on the same channel are unaffected.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, connectSocket, echoClient, openListener, prng, randomBytes, skipFor, waitFor, withTimeout, closeListenerAndChannel } from './helpers.js';
import { createChannel } from '../src/index.js';

const VICTIMS = 6;
const ECHOES = 40;
const CHUNK = 64 * 1024;
const CAP = 256 * 1024 * 1024;   // the most one writer sends (never reached: the peer resets first)

for (const backend of BACKENDS) {
  describe(`peer reset during a large write (${backend})`, { skip: skipFor(backend) }, () => {
    it('a graceful disconnect still draining when the peer resets ends with its disconnect event', async () => {
      // the server queues more than the socket buffers take, closes gracefully (the queue drains first), and the
      // peer, which never read, resets: the drain cannot finish, and the handle must still go
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      const block = randomBytes(prng(5), 4 * 1024 * 1024);
      let gone = 0, listenerGone = false, closedGracefully = 0;
      const errors: string[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { ch.read(ev.handle); return; }
        if (ev.type === 'read' && ev.result > 0) { ch.write(ev.handle, block); ch.disconnect(ev.handle); closedGracefully++; return; }
        if (ev.type === 'error') errors.push(ev.code);
        if (ev.type === 'disconnect') gone++;
      });
      ch.accept(lh);
      try {
        for (let i = 0; i < 3; i++) {
          const s = await connectSocket(listener.port);
          s.pause();                                    // never reads: the server's queue cannot drain
          s.write('request');
          await waitFor(() => closedGracefully === i + 1, 'the server to close gracefully');
          await new Promise((r) => setTimeout(r, 50));  // the server is blocked on the full socket now
          s.resetAndDestroy();
          await waitFor(() => gone === i + 1, 'the disconnect event after the reset', { ms: 10000 });
        }
        assert.equal(ch.handles, 1, 'only the listener is left');
      } finally {
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });

    it('the writer gets ECONNRESET/EPIPE, nothing crashes, other connections keep echoing', async () => {
      const rand = prng(99);
      const block = randomBytes(rand, CHUNK);
      const ch = createChannel({ backend });
      const bigL = await openListener(backend), echoL = await openListener(backend);
      const bigH = ch.register(bigL, 'big'), echoH = ch.register(echoL, 'echo');
      type Writer = { h: number; sent: number; blocked: boolean; errors: string[]; gone: boolean };
      const writers = new Map<number, Writer>();   // open writer connections (handles are reused once gone)
      const all: Writer[] = [];
      const echoErrors: string[] = [];
      let listenersGone = 0, echoGone = 0, echoAccepted = 0;
      const pump = (h: number) => {
        const w = writers.get(h)!;
        while (w.errors.length === 0 && w.sent < CAP) {
          w.sent += CHUNK;
          if (!ch.write(h, block)) { w.blocked = true; return; }
        }
      };
      ch.onEvent((ev) => {
        const h = ev.handle;
        if (h === bigH || h === echoH) { if (ev.type === 'disconnect') listenersGone++; return; }
        const w = writers.get(h);
        switch (ev.type) {
          case 'accept':
            if (ev.cookie === 'big') {
              const nw = { h, sent: 0, blocked: false, errors: [], gone: false };
              writers.set(h, nw); all.push(nw); ch.read(h); pump(h);
            }
            else { echoAccepted++; ch.read(h); }
            break;
          case 'read':
            if (w) break;   // the victim sends nothing
            if (ev.result > 0) ch.write(h, ev.buffer, ev.offset, ev.result); else ch.disconnect(h);
            break;
          case 'write':
            if (w && w.errors.length === 0 && ch.pendingBytes(h) <= ch.limits.lowWaterMark) pump(h);
            break;
          case 'error':
            if (w) {
              w.errors.push(ev.code);
              try { ch.disconnect(h, true); } catch { /* already closing */ }
            } else echoErrors.push(ev.code);
            break;
          case 'disconnect':
            if (w) { w.gone = true; writers.delete(h); } else echoGone++;
            break;
          default: break;
        }
      });
      ch.accept(bigH);
      ch.accept(echoH);
      try {
        const echoes = Array.from({ length: ECHOES }, (_, i) => echoClient(echoL.port, randomBytes(rand, 1000 + i * 10_000)));
        const victims = await Promise.all(Array.from({ length: VICTIMS }, () => connectSocket(bigL.port)));
        await waitFor(() => all.length === VICTIMS && all.every((w) => w.blocked), 'every writer to hit the high-water mark');
        for (const s of victims) s.resetAndDestroy();
        await waitFor(() => all.every((w) => w.gone), 'every reset connection to be gone');
        for (const { h, ...w } of all) {
          assert.ok(w.errors.length >= 1, `handle ${h} reported an error`);
          for (const code of w.errors) assert.ok(code === 'ECONNRESET' || code === 'EPIPE', `handle ${h}: ${code} is ECONNRESET or EPIPE`);
          assert.ok(w.sent < CAP);
        }
        await withTimeout(Promise.all(echoes), 60000, 'echo clients');
        await waitFor(() => echoGone === ECHOES, 'echo connections to close');
        assert.equal(echoAccepted, ECHOES);
        assert.deepEqual(echoErrors, []);
        // the channel still serves new connections afterwards
        await echoClient(echoL.port, randomBytes(rand, 100_000));
      } finally {
        ch.unregister(bigH); ch.unregister(echoH);
        await waitFor(() => listenersGone === 2, 'listener handles to go');
        bigL.close(); echoL.close();
        ch.close();
      }
    });
  });
}
