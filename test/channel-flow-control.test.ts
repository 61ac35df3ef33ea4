// Flow control against a peer that never reads (until it finally does):
// - a writer that keeps writing sees `write` return false exactly when the queued bytes pass the high-water mark, is
//   held back while the peer does not read (pendingBytes never exceeds the high-water mark plus one write), and after
//   each false gets exactly one 'write' event that finds the queue at or below the low-water mark (the drain);
// - an echo server (which writes whatever it reads) stops receiving from that peer, so neither its queue nor the
//   process's memory grows with what the peer pushes, while other connections on the same channel keep echoing;
// - when the peer reads at last, every byte arrives, in order.
// "The peer does not read" is read from the kernel (/proc/net/tcp: bytes waiting in both sockets), never from a quiet
// window of time.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { closeSync, openSync, readFileSync } from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { BACKENDS, connectSocket, echoClient, openListener, prng, randomBytes, rssBytes, skipFor, waitFor, withTimeout, closeListenerAndChannel } from './helpers.js';
import { createChannel } from '../src/index.js';

const selfFd = openSync(new URL(import.meta.url), 'r');   // readFile's round trips through a channel
after(() => closeSync(selfFd));

interface TcpSocket { state: string; tx: number; rx: number }

/** The kernel's view (/proc/net/tcp, read once) of both ends of the loopback TCP connection between ports `a` and `b`:
 * each end's state ('01' established, '08' close-wait: the peer's FIN was received) and send and receive queues in
 * bytes; undefined for an end not found. */
function tcpEnds(a: number, b: number): { a?: TcpSocket; b?: TcpSocket } {
  const hex = (p: number) => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: { a?: TcpSocket; b?: TcpSocket } = {};
  const pa = hex(a), pb = hex(b);
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n')) {
    if (!line.includes(pa) || !line.includes(pb)) continue;   // (few lines split: this runs in loops)
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const end = f[1]!.endsWith(pa) && f[2]!.endsWith(pb) ? 'a' : f[1]!.endsWith(pb) && f[2]!.endsWith(pa) ? 'b' : undefined;
    if (end === undefined) continue;
    const [tx, rx] = f[4]!.split(':').map((x) => parseInt(x, 16)) as [number, number];
    out[end] = { state: f[3]!, tx, rx };
  }
  return out;
}

/** True when the kernel holds bytes sent from `from` to `to` that `to` has not taken: `from`'s send queue and `to`'s
 * receive queue are both non-empty, i.e. `to`'s window has closed (loopback delivers at once otherwise). */
function backedUp(ends: { a?: TcpSocket; b?: TcpSocket }, from: 'a' | 'b'): boolean {
  const snd = ends[from], rcv = ends[from === 'a' ? 'b' : 'a'];
  return snd !== undefined && rcv !== undefined && snd.tx > 0 && rcv.rx > 0;
}

/** V8's collector (garbage would blur the RSS comparison). */
function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Reads everything `s` receives from now on, checking it against `expect` incrementally; resolves at EOF. */
function verifyStream(s: net.Socket, expect: Uint8Array, ms: number): Promise<number> {
  return withTimeout(new Promise((resolve, reject) => {
    let got = 0;
    s.on('data', (d: Buffer) => {
      if (got + d.byteLength > expect.byteLength || Buffer.compare(d, expect.subarray(got, got + d.byteLength)) !== 0) {
        s.destroy(); reject(new Error(`bytes differ or overrun at ${got}`)); return;
      }
      got += d.byteLength;
    });
    s.once('end', () => (got === expect.byteLength ? resolve(got) : reject(new Error(`EOF after ${got} of ${expect.byteLength} B`))));
    s.once('error', reject);
  }), ms, 'the slow reader to receive everything');
}

for (const backend of BACKENDS) {
  describe(`flow control (${backend})`, { skip: skipFor(backend) }, () => {
    it('a writer that keeps writing: write() returns false exactly above the high-water mark; one drain write event per false; pendingBytes stays bounded', async (t) => {
      const TOTAL = 48 * 1024 * 1024, CHUNK = 40_000;
      const rand = prng(11);
      const data = randomBytes(rand, TOTAL);
      const ch = createChannel({ backend });
      const hwm = ch.limits.highWaterMark, lwm = ch.limits.lowWaterMark;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, sent = 0, falses = 0, trues = 0, maxPending = 0, drains = 0, reported = 0, gone = false, listenerGone = false;
      let queuedAtEnd = -1;
      let waiting = false;   // write() returned false: the pump waits for a 'write' event at or below the low-water mark
      const errors: string[] = [], violations: string[] = [];
      const pump = () => {
        while (sent < TOTAL) {
          const n = Math.min(CHUNK, TOTAL - sent);
          const ok = ch.write(conn, data, sent, n);
          sent += n;
          const p = ch.pendingBytes(conn);
          maxPending = Math.max(maxPending, p);
          if (ok !== (p <= hwm)) violations.push(`write() returned ${ok} with ${p} B queued (high-water mark ${hwm})`);
          if (!ok) { falses++; waiting = true; return; }
          trues++;
        }
        queuedAtEnd = ch.pendingBytes(conn);
        ch.disconnect(conn);   // graceful: the queue drains first (a closing connection reports no more 'write' events)
      };
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; pump(); }
        else if (ev.type === 'write') {
          reported += ev.result;
          const p = ch.pendingBytes(conn);
          maxPending = Math.max(maxPending, p);
          // what write events reported has left the queue: on io_uring exactly (pendingBytes drops as each send
          // completes); node:net may drop writableLength before the write's callback (the event) runs
          if (backend === 'uring' ? reported + p !== sent : reported + p > sent) violations.push(`write events reported ${reported} B with ${p} of ${sent} B queued`);
          if (waiting && p <= lwm) { waiting = false; drains++; pump(); }
        } else if (ev.type === 'error') errors.push(ev.code!);
        else if (ev.type === 'disconnect') gone = true;
      });
      ch.accept(lh, { count: 1 });
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(listener.port);
        s.pause();   // never reads (node:net fills its own buffer, then stops reading from the kernel)
        // the peer's window closes: the kernel holds bytes on both ends; the writer, waiting for a drain, is held back
        await waitFor(() => waiting && backedUp(tcpEnds(listener.port, s!.localPort!), 'a'), 'the peer to stop taking bytes');
        assert.ok(sent < TOTAL, `held back after ${sent} of ${TOTAL} B`);
        assert.ok(ch.pendingBytes(conn) <= hwm + CHUNK, `pendingBytes ${ch.pendingBytes(conn)} ≤ hwm + one write`);
        const heldAt = sent;
        const all = verifyStream(s, data, 60000);
        s.resume();
        assert.equal(await all, TOTAL, 'every byte, in order');
        await waitFor(() => gone, 'the writer connection to close');
        t.diagnostic(`held back after ${heldAt} B; ${falses} falses, ${drains} drains; max pendingBytes ${maxPending} (hwm ${hwm} + write ${CHUNK})`);
        assert.deepEqual(violations, []);
        assert.ok(falses > 1 && trues > 0, `${falses} falses, ${trues} trues`);
        assert.equal(drains, falses, 'every false was followed by a write event at or below the low-water mark');
        // (a closing connection reports no more write events)
        if (backend === 'uring') assert.equal(reported, TOTAL - queuedAtEnd, 'write events report every byte that left the queue before the disconnect');
        else assert.ok(reported <= TOTAL - queuedAtEnd, `write events report no more than was written (${reported})`);
        assert.ok(maxPending <= hwm + CHUNK, `max pendingBytes ${maxPending} ≤ ${hwm} + ${CHUNK}`);
        assert.deepEqual(errors, []);
      } finally {
        s?.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });

    it('pause()/resume(): no read events while paused, then every byte and the EOF, in order, never inside resume()', async () => {
      const rand = prng(13);
      const data = randomBytes(rand, 2 * 1024 * 1024);   // fits the two kernels' socket buffers: the client can hand all of it over
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, paused = false, resumed = false, inResume = false, listenerGone = false, gone = false, eofAt = -1;
      const violations: string[] = [];
      const got: Buffer[] = [];
      let received = 0;
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; ch.read(conn); return; }
        if (ev.type === 'disconnect') { gone = true; return; }
        if (ev.type !== 'read') return;
        if (paused) violations.push(`read event (${ev.result}) while paused`);
        if (inResume) violations.push('read event delivered inside resume()');
        if (ev.result === 0) { eofAt = received; ch.disconnect(conn); return; }
        got.push(Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result)));
        received += ev.result;
        if (received >= 100_000 && !paused && !resumed) { ch.pause(conn); paused = true; }
      });
      ch.accept(lh);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(listener.port);
        let finished = false;
        s.end(data, () => { finished = true; });   // all of it, then FIN
        await waitFor(() => paused, 'the pause');
        // the rest reaches the server while it is paused: the client has handed everything to its kernel, and the server
        // has it — in its socket, not taken by the channel (or, on io_uring, already received and held back, the FIN
        // too: close-wait); nothing may be delivered meanwhile, not even across a round trip through the channel
        await waitFor(() => {
          const k = finished ? tcpEnds(listener.port, s!.localPort!).a : undefined;
          return k !== undefined && (k.rx > 0 || k.state === '08');
        }, 'the rest of the bytes to reach the paused server');
        await ch.readFile(selfFd, 0, 1);
        const whilePaused = received;
        assert.ok(whilePaused < data.byteLength, 'paused before the end');
        resumed = true;
        paused = false;
        inResume = true;
        ch.resume(conn);
        inResume = false;
        await waitFor(() => gone, 'the EOF and close after resume()');
        assert.deepEqual(violations, []);
        assert.equal(eofAt, data.byteLength, 'EOF after every byte');
        assert.ok(Buffer.concat(got).equals(data), 'every byte, in order');
      } finally {
        s?.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });

    it('an echo peer that never reads: receiving pauses, memory stays bounded, others keep echoing, nothing is lost', async (t) => {
      const PUSH = 64 * 1024 * 1024;
      const rand = prng(12);
      const payload = randomBytes(rand, PUSH);
      // a 4 MiB receive pool and 8 MiB of send memory: the channel's fixed regions are mapped lazily, so RSS grows
      // by up to their size as they are first touched; keep that small beside what the peer pushes
      const ch = createChannel({ backend, limits: { recvBuffers: 256, sendArenaBytes: 8 * 1024 * 1024 } });
      const hwm = ch.limits.highWaterMark;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      const read = new Map<number, number>();   // bytes received per connection
      let maxPending = 0, maxRead = 0, listenerGone = false, falses = 0, sinkHandle = -1, sinkNext = false;
      const errors: string[] = [];
      ch.onEvent((ev) => {
        const h = ev.handle;
        if (h === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        switch (ev.type) {
          case 'accept': read.set(h, 0); ch.read(h); if (sinkNext) { sinkHandle = h; sinkNext = false; } break;
          case 'read':
            if (ev.result === 0) { ch.disconnect(h); break; }
            read.set(h, read.get(h)! + ev.result);
            maxRead = Math.max(maxRead, ev.result);
            if (!ch.write(h, ev.buffer, ev.offset, ev.result)) falses++;   // keeps writing whatever it reads
            maxPending = Math.max(maxPending, ch.pendingBytes(h));
            break;
          case 'error': errors.push(ev.code!); break;
          case 'disconnect': read.delete(h); break;
          default: break;
        }
      });
      ch.accept(lh);
      let sink: net.Socket | undefined;
      try {
        // warm up (JIT, pools, socket buffers) with ordinary echo traffic, then take the baseline
        await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) => echoClient(listener.port, randomBytes(rand, 1000 + i * 50_000)))), 60000, 'warm-up clients');
        const gc = gcFunction();
        gc();
        const rssBefore = rssBytes();
        sinkNext = true;   // the next connection accepted is the sink's
        sink = await connectSocket(listener.port);
        sink.pause();
        sink.write(payload);   // node:net keeps a reference, no copy
        await waitFor(() => falses > 0, 'the echo to exceed the high-water mark');
        // the server stops taking bytes from the sink. Evidence from the channel and the kernel, not from a quiet window
        // of time: over 20 consecutive round trips through the channel (each one a chance to receive and to send: its
        // ring on io_uring, libuv's poll phase on node:net), each followed by a turn of the event loop (the sink, a
        // node:net socket of this process, writes in libuv's poll phase: a channel may run several round trips in one
        // turn), the channel moves no byte — neither reads nor writes, and the sink is its only connection — and then
        // the kernel holds bytes both ways (the sink's bytes the channel does not read, the echo the sink does not read)
        await waitFor(() => sinkHandle >= 0, 'the sink connection');
        let last = '', same = 0;
        for (let i = 0; i < 5000 && same < 20; i++) {
          await ch.readFile(selfFd, 0, 1);
          await new Promise((r) => setImmediate(r));
          const st = ch.stats();
          const now = `${st.bytesRead} ${st.bytesWritten} ${read.get(sinkHandle)} ${ch.pendingBytes(sinkHandle)}`;
          same = now === last ? same + 1 : 0;
          last = now;
        }
        assert.equal(same, 20, 'the channel stops moving bytes on the sink connection');
        const ends = tcpEnds(listener.port, sink.localPort!);
        assert.ok(backedUp(ends, 'a') && backedUp(ends, 'b'), `the kernel holds bytes both ways: ${JSON.stringify(ends)}`);
        const sinkBytes = read.get(sinkHandle)!;
        assert.ok(sinkBytes < PUSH / 2, `server took ${sinkBytes} of ${PUSH} B`);
        assert.ok(sink.writableLength > 0, 'the peer\'s own writes back up (TCP flow control reached it)');
        assert.ok(maxPending <= hwm + maxRead, `max pendingBytes ${maxPending} ≤ ${hwm} + one write (${maxRead})`);
        // memory, measured before the other clients run (their buffers are this process's too, and V8 need not give
        // their pages back after a collection: measured after them, the figure was theirs, up to +77 MiB on a loaded run)
        gc();
        const grew = rssBytes() - rssBefore;
        t.diagnostic(`server took ${sinkBytes} of ${PUSH} B before pausing; max pendingBytes ${maxPending} (hwm ${hwm} + read ${maxRead}); RSS +${(grew / 1048576).toFixed(1)} MiB`);
        // The bound is asserted on what the channel holds (above: fewer than half the pushed bytes taken, at most the
        // high-water mark plus one read queued — pendingBytes counts the overflow lists too, so bytes piled up in
        // JavaScript fail it). RSS is reported, not asserted: this process is also the sink's client and runs the probe
        // loop above, and on a loaded machine its RSS grew by +34.6 … +106 MiB in runs with the same bytes held
        // (freed pages kept by malloc and V8; a flake hunt under six busy loops failed a `grew < 64 MiB` check 5 times)
        // — a load-dependent reading of the whole process, not the channel's bound.
        // meanwhile another connection on the same channel is served normally
        const others = await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) => echoClient(listener.port, randomBytes(rand, 1000 + i * 20_000)))), 60000, 'other clients');
        assert.equal(others.length, 20);
        assert.equal(read.get(sinkHandle), sinkBytes, 'still paused: the channel served 20 connections and read nothing more from the sink');
        // now the sink reads: everything comes back in order
        const all = verifyStream(sink, payload, 120000);
        sink.end();
        sink.resume();
        assert.equal(await all, PUSH);
        assert.ok(maxPending <= hwm + maxRead, `max pendingBytes ${maxPending} ≤ ${hwm} + one write (${maxRead})`);
        assert.deepEqual(errors, []);
        await waitFor(() => read.size === 0, 'connections to close');
      } finally {
        sink?.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });
  });
}
