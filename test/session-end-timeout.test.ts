// conn.end() towards a peer that stops reading: the queued bytes cannot drain, so after `endTimeoutMs` without progress
// the connection is destroyed and its session's close() gets ETIMEDOUT — on serveChannel (both backends) and serveNet.
// A peer that keeps reading, however slowly — here across many timeouts — gets every byte and a clean close.
//
// Deterministic, not a race between timers: the servers' drain watch is one interval that looks at every ended
// connection (end-watch.ts); the test mocks that interval (node:test MockTimers, setInterval only) and runs each look
// itself. Between two looks, at least endTimeoutMs of real time passes, and the reading peer — which otherwise stalls —
// is let read until the server's own measure of progress has moved (then it stalls again). So at every look the reader
// has made progress and the stalled peer has not: the outcome follows from the order of events alone.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import { BACKENDS, connectSocket, openListener, prng, randomBytes, skipFor, waitFor, withTimeout } from './helpers.js';
import { createChannel, serveChannel, serveNet, type Channel, type Conn, type SessionFactory } from '../src/index.js';
import { progressWatch } from '../src/portable/file-queue.js';

const REPLY = randomBytes(prng(3), 32 * 1024 * 1024);   // far more than loopback socket buffers hold
const TIMEOUT_MS = 40;

interface Outcome { conn: Conn; ended: boolean; closed: boolean; code: string | undefined }

/** Answers the first byte with REPLY, then ends. */
function factory(outcomes: Outcome[]): SessionFactory {
  return (conn) => {
    const o: Outcome = { conn, ended: false, closed: false, code: undefined };
    outcomes.push(o);
    return {
      data() {
        if (o.ended) return;
        for (let off = 0; off < REPLY.length; off += 1 << 20) conn.write(REPLY, off, 1 << 20);
        conn.end();
        o.ended = true;
      },
      close(err) { o.closed = true; o.code = err?.code; },
    };
  };
}

/** How a server measures a peer's progress on an ended connection (serve-channel.ts, serve-net.ts), for the test to
 * see the same thing: each call tells whether the peer took bytes since the previous call. */
type ProgressOf = (conn: Conn) => () => boolean;

const channelProgress = (ch: Channel): ProgressOf => (conn) => ch.watchProgress(conn.id);
const netProgress: ProgressOf = (conn) => progressWatch((conn as unknown as { socket: net.Socket }).socket);

/** Runs one look of the mocked drain watch, at least TIMEOUT_MS of real time after the previous one. */
function watchLooks(t: TestContext): () => Promise<void> {
  let last = Date.now();
  return async () => {
    for (let i = 0; i < 100 && Date.now() - last < TIMEOUT_MS; i++) await sleep(TIMEOUT_MS);
    t.mock.timers.tick(TIMEOUT_MS);   // ≥ one period of the watch's interval (a quarter of the timeout, at least 10 ms)
    last = Date.now();
  };
}

/** A peer that sends one byte and never reads. */
async function stalledPeer(port: number): Promise<net.Socket> {
  const s = await connectSocket(port);
  s.pause();
  s.on('error', () => {});
  s.write('x');
  return s;
}

/** Lets `s` (paused) receive one chunk at a time until `done()` (checked after each chunk and a few loop turns).
 * Rejects if the connection ends or closes first. */
async function readUntil(s: net.Socket, done: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    for (let k = 0; k < 3; k++) { if (done()) return; await immediate(); }
    if (s.readableEnded || s.destroyed) throw new Error('the reader\'s connection ended before the server saw it take bytes');
    await withTimeout(new Promise<void>((resolve) => {
      const next = () => { s.off('data', next); s.off('end', next); s.off('close', next); s.pause(); resolve(); };
      s.on('data', next); s.once('end', next); s.once('close', next);
      s.resume();
    }), 10000, 'a chunk of the reply');
  }
  throw new Error('the server never saw the reader take bytes');
}

/** A stalled peer is destroyed with ETIMEDOUT while a peer that reads only when the test lets it, across many looks of
 * the watch (many timeouts of real time), survives and then gets every byte and a clean close. */
async function stalledAndReading(t: TestContext, port: number, outcomes: Outcome[], progressOf: ProgressOf): Promise<void> {
  const look = watchLooks(t);
  const stalled = await stalledPeer(port);
  await waitFor(() => outcomes[0]?.ended === true, 'the stalled connection to end');
  const reader = await connectSocket(port);
  reader.pause();
  const parts: Buffer[] = [];
  let eof = false;
  reader.on('data', (d: Buffer) => parts.push(d));
  reader.once('end', () => { eof = true; });
  reader.write('x');
  await waitFor(() => outcomes[1]?.ended === true, 'the reading connection to end');
  const [gone, kept] = outcomes as [Outcome, Outcome];
  const moved = progressOf(kept.conn);
  let looks = 0, looksAfter = 0;
  for (; looks < 50 && looksAfter < 3; looks++) {
    assert.equal(kept.closed, false, `the reading connection closed (${kept.code ?? 'without error: all sent'}) at look ${looks}; the stalled one is ${gone.closed ? 'gone' : 'still open'}`);
    if (gone.closed) looksAfter++;
    // the reader reads, a chunk at a time, until the server's measure of its progress moves, then stalls until the
    // next round
    await readUntil(reader, moved);
    assert.ok(!eof, 'the reply is not all read yet');
    await look();
  }
  await waitFor(() => gone.closed, 'the stalled connection to be destroyed', { ms: 5000 });
  assert.equal(gone.code, 'ETIMEDOUT');
  assert.ok(looksAfter >= 3, `the reader outlived the stalled peer by ${looksAfter} looks of the watch`);
  t.diagnostic(`${looks} looks; the reader had taken ${parts.reduce((n, b) => n + b.byteLength, 0)} of ${REPLY.byteLength} B`);
  assert.equal(kept.closed, false, `the reading peer is still served after ${looks} looks, ${looks} timeouts of real time apart`);
  stalled.destroy();
  reader.resume();
  await waitFor(() => eof, 'the rest of the reply', { ms: 30000 });
  assert.ok(Buffer.concat(parts).equals(REPLY), 'the reading peer gets every byte');
  await waitFor(() => kept.closed, 'the reading connection to close');
  assert.equal(kept.code, undefined, 'closed without error');
}

/** A peer that takes every byte but keeps its own side open (half-open): the ended connection closes without error,
 * whatever the watch looks at afterwards. */
async function halfOpenReader(t: TestContext, port: number, outcomes: Outcome[]): Promise<void> {
  const look = watchLooks(t);
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  const got = withTimeout(new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));   // the server's FIN; this side stays open
  }), 30000, 'the whole reply');
  s.write('x');
  try {
    assert.ok((await got).equals(REPLY), 'every byte');
    await look();
    await look();   // two looks, a timeout apart, after the peer took everything
    await waitFor(() => outcomes[0]?.closed === true, 'the ended connection to close');
    assert.equal(outcomes[0]!.code, undefined, 'closed without error');
  } finally { s.destroy(); }
}

for (const backend of BACKENDS) {
  describe(`serveChannel: end() timeout (${backend})`, { skip: skipFor(backend) }, () => {
    async function withServer(t: TestContext, run: (port: number, outcomes: Outcome[], ch: Channel) => Promise<void>): Promise<void> {
      const ch = createChannel({ backend });   // before the mock: the portable channel's own interval stays real
      const listener = await openListener(backend);
      const outcomes: Outcome[] = [];
      t.mock.timers.enable({ apis: ['setInterval'] });
      const server = serveChannel(ch, listener, factory(outcomes), { endTimeoutMs: TIMEOUT_MS });
      try {
        await run(listener.port, outcomes, ch);
      } finally {
        await server.close(1000);
        t.mock.timers.reset();
        listener.close();
        ch.close();
      }
    }

    it('destroys an ended connection whose peer stops reading (ETIMEDOUT); a peer that reads, however slowly, gets everything', async (t) => {
      await withServer(t, (port, outcomes, ch) => stalledAndReading(t, port, outcomes, channelProgress(ch)));
    });

    it('a peer that takes every byte and keeps its own side open: the ended connection closes without error', async (t) => {
      await withServer(t, (port, outcomes) => halfOpenReader(t, port, outcomes));
    });
  });
}

describe('serveNet: end() timeout', () => {
  async function withServer(t: TestContext, run: (port: number, outcomes: Outcome[]) => Promise<void>): Promise<void> {
    const outcomes: Outcome[] = [];
    t.mock.timers.enable({ apis: ['setInterval'] });
    const server = await serveNet(factory(outcomes), { endTimeoutMs: TIMEOUT_MS });
    try {
      await run(server.port, outcomes);
    } finally {
      await server.close(1000);
      t.mock.timers.reset();
    }
  }

  it('destroys an ended connection whose peer stops reading (ETIMEDOUT); a peer that reads, however slowly, gets everything', async (t) => {
    await withServer(t, (port, outcomes) => stalledAndReading(t, port, outcomes, netProgress));
  });

  // (a regression test: serveNet left an ended socket half-open until the peer's FIN, and its end watch, which saw
  // nothing left to move, then destroyed it with ETIMEDOUT, "took none of the last 0 bytes")
  it('a peer that takes every byte and keeps its own side open: the ended connection closes without error', async (t) => {
    await withServer(t, (port, outcomes) => halfOpenReader(t, port, outcomes));
  });

  it('names a bad endTimeoutMs', async () => {
    await assert.rejects(serveNet(factory([]), { endTimeoutMs: -1 }), /endTimeoutMs must be a non-negative integer/);
    await assert.rejects(serveNet(factory([]), { endTimeoutMs: 1.5 }), /endTimeoutMs/);
  });
});
