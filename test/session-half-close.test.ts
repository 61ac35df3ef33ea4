// Conn.halfClose(): what is queued is sent, then the write side shuts down (the peer reads EOF) while input keeps
// arriving; writes afterwards are refused (false; sendFile rejects with MP_ERR_CLOSED); the session's `end` comes with
// the peer's EOF and `end()` then closes without error — on serveChannel (both backends) and serveNet. The reply
// (8 MiB) is far more than loopback socket buffers hold, so the FIN must wait for it; every byte both ways is checked.
// Also: halfClose() then end() closes once the bytes are out without waiting for the peer's FIN (a peer that keeps its
// side open must not keep the connection), and writes after end() are refused while a file is still queued.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BACKENDS, openListener, prng, randomBytes, skipFor, waitFor, withTimeout } from './helpers.js';
import { createChannel, serveChannel, serveNet, type Conn, type SessionFactory } from '../src/index.js';

const REPLY = randomBytes(prng(11), 8 * 1024 * 1024);
const AFTER = randomBytes(prng(12), 3 * 1024 * 1024 + 17);

interface Seen {
  received: Buffer[];
  /** what writes, writeAscii, writeNoCopy returned after halfClose(); whether halfClose() again threw */
  refused: boolean[];
  sendFileCode: string | undefined;
  peerEnded: boolean;
  closed: boolean;
  code: string | undefined;
}

/** On the first byte: queues REPLY, half-closes, and tries every kind of write. Keeps what arrives after it. */
function factory(seen: Seen[]): SessionFactory {
  return (conn) => {
    const s: Seen = { received: [], refused: [], sendFileCode: undefined, peerEnded: false, closed: false, code: undefined };
    seen.push(s);
    let first = true;
    return {
      data(buf, off, len) {
        if (first) {
          first = false;
          assert.equal(len >= 1 && buf[off], 0x71);
          for (let o = 0; o < REPLY.length; o += 1 << 20) conn.write(REPLY, o, 1 << 20);
          conn.halfClose();
          conn.halfClose();   // idempotent
          s.refused.push(conn.write(Buffer.from('x')), conn.write('x'), conn.writeAscii('x'), conn.writeNoCopy(Buffer.alloc(4096, 0x78)));
          const fd = fs.openSync(process.execPath, 'r');
          conn.sendFile(fd, 0, 16).then(() => { s.sendFileCode = 'resolved'; }, (e: { code?: string }) => { s.sendFileCode = e.code; })
            .finally(() => fs.closeSync(fd));
          if (len > 1) s.received.push(Buffer.from(buf.subarray(off + 1, off + len)));
          return;
        }
        s.received.push(Buffer.from(buf.subarray(off, off + len)));
      },
      end() { s.peerEnded = true; conn.end(); },
      close(err) { s.closed = true; s.code = err?.code; },
    };
  };
}

/** Everything `c` receives until the server's EOF (bounded). */
function untilEof(c: net.Socket, what: string): Promise<Buffer> {
  return withTimeout(new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    c.once('end', () => resolve(Buffer.concat(parts)));
  }), 30000, what);
}

async function halfClosedExchange(port: number, seen: Seen[]): Promise<void> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let error: Error | null = null, closed = false;
  c.on('error', (e) => { error = e; });
  c.on('close', () => { closed = true; });
  try {
    await withTimeout(new Promise((r, j) => { c.once('connect', r); c.once('error', j); }), 10000, 'connect');
    const got = untilEof(c, 'the reply and the server\'s EOF');
    c.write('q');
    const reply = await got;
    assert.equal(reply.length, REPLY.length, 'the whole reply before the EOF, nothing after it');
    assert.ok(reply.equals(REPLY), 'every byte of the reply');
    const s = seen[0]!;
    assert.deepEqual(s.refused, [false, false, false, false], 'writes after halfClose() are refused');
    await waitFor(() => s.sendFileCode !== undefined, 'sendFile after halfClose() to settle');
    assert.equal(s.sendFileCode, 'MP_ERR_CLOSED');
    assert.equal(s.closed, false, 'the connection stays open after the half-close');
    // the server still reads: every byte sent after its EOF reaches the session
    c.end(AFTER);
    await waitFor(() => s.closed, 'the connection to close after the client\'s EOF', { ms: 30000 });
    assert.ok(s.peerEnded, 'the session\'s end() ran');
    assert.equal(s.code, undefined, 'closed without error');
    assert.ok(Buffer.concat(s.received).equals(AFTER), 'every byte sent after the server\'s EOF reached the session');
    await waitFor(() => closed, 'the client\'s socket to close');
    assert.equal(error, null, `the client saw ${String(error)}`);
  } finally { c.destroy(); }
}

const FILE = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-half-close-')), 'f.bin');
fs.writeFileSync(FILE, randomBytes(prng(13), 16 * 1024));   // below the high-water mark: a write would say true
process.on('exit', () => fs.rmSync(path.dirname(FILE), { recursive: true, force: true }));

/** A session that runs `first(conn)` on its first input and ignores the rest (and the peer's EOF). */
function onFirstByte(first: (conn: Conn) => void, close?: () => void): SessionFactory {
  return (conn) => {
    let seen = false;
    return {
      data() { if (!seen) { seen = true; first(conn); } },
      end() { /* the peer's EOF: nothing (these tests close from the server side) */ },
      close,
    };
  };
}

/** On the first byte: sends FILE, ends, then writes: the writes after end() must be refused (the file still queued). */
const endWithFileQueued = (answers: boolean[]): SessionFactory => onFirstByte((conn) => {
  const fd = fs.openSync(FILE, 'r');
  void conn.sendFile(fd, 0, fs.fstatSync(fd).size).catch(() => {}).finally(() => fs.closeSync(fd));
  conn.end();
  answers.push(conn.write('LEAK'), conn.writeAscii('LEAK'), conn.write(Buffer.from('LEAK')));
});

/** On the first byte: 8 MiB (more than loopback buffers hold: still queued), halfClose(), then end() at once. */
const halfThenEnd = (closed: { yes: boolean }): SessionFactory => onFirstByte((conn) => {
  const big = Buffer.alloc(8 * 1024 * 1024, 0x62);
  for (let o = 0; o < big.length; o += 1 << 20) conn.write(big, o, 1 << 20);
  conn.halfClose();
  conn.end();
}, () => { closed.yes = true; });

/** A peer that reads everything, sees EOF, and keeps its own side open: the server must close by itself. */
async function readAllKeepOpen(port: number, closed: { yes: boolean }): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  try {
    let got = 0;
    const eof = new Promise<void>((resolve) => s.on('end', () => resolve()));
    s.on('data', (d: Buffer) => { got += d.byteLength; });
    await withTimeout(new Promise<void>((resolve) => s.once('connect', () => resolve())), 10000, 'connect');
    s.write('q');
    await withTimeout(eof, 30000, 'EOF');
    assert.equal(got, 8 * 1024 * 1024);
    await waitFor(() => closed.yes, 'the server to close the connection without the peer\'s FIN', { ms: 10000 });
  } finally {
    s.destroy();
  }
}

/** On the first byte: 8 MiB (write() says false), then `after` (none, 'end' or 'halfClose'); counts the session's drains. */
const bigThen = (after: 'none' | 'end' | 'halfClose', drains: { n: number; closed: boolean }): SessionFactory => onFirstByte((conn) => {
  let ok = true;
  for (let o = 0; o < REPLY.length; o += 1 << 20) ok = conn.write(REPLY, o, 1 << 20);
  assert.equal(ok, false, '8 MiB is above the high-water mark');
  if (after === 'end') conn.end();
  else if (after === 'halfClose') conn.halfClose();
}, () => { drains.closed = true; });

/** The peer reads the 8 MiB (every byte checked), sees EOF where the session ended, and counts drains meanwhile. */
async function readBig(port: number, after: 'none' | 'end' | 'halfClose', drains: { n: number; closed: boolean }): Promise<void> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  try {
    await withTimeout(new Promise<void>((resolve) => c.once('connect', () => resolve())), 10000, 'connect');
    if (after === 'none') {
      const parts: Buffer[] = [];
      let got = 0;
      const all = withTimeout(new Promise<void>((resolve) => c.on('data', (d: Buffer) => { parts.push(d); got += d.byteLength; if (got >= REPLY.length) resolve(); })), 30000, 'the 8 MiB');
      c.write('q');
      await all;
      await waitFor(() => drains.n > 0, 'the session\'s drain once the bytes are sent');
      assert.ok(Buffer.concat(parts).equals(REPLY), `every byte of the reply (${got} bytes)`);
      assert.equal(drains.n, 1);
      return;
    }
    const got = untilEof(c, 'the 8 MiB and the server\'s EOF');
    c.write('q');
    const body = await got;
    assert.ok(body.equals(REPLY), `every byte of the reply, then EOF (${body.length} bytes)`);
    if (after === 'halfClose') c.end();
    await waitFor(() => drains.closed, 'the connection to close');
    // after end() nothing waits for it; after halfClose() input goes on, and drain is how a session that paused it
    // for its output knows to resume it
    assert.equal(drains.n, after === 'end' ? 0 : 1, `the session's drains after ${after}()`);
  } finally { c.destroy(); }
}

/** Runs `run(port)` against `factory` served by serveChannel on `backend`, or by serveNet. */
async function withServer(transport: 'uring' | 'portable' | 'net', factory: SessionFactory, run: (port: number) => Promise<void>): Promise<void> {
  if (transport === 'net') {
    const server = await serveNet(factory);
    try { await run(server.port); } finally { await server.close(1000); }
    return;
  }
  const ch = createChannel({ backend: transport });
  const listener = await openListener(transport);
  const server = serveChannel(ch, listener, factory);
  try { await run(listener.port); } finally { await server.close(1000); listener.close(); ch.close(); }
}

/** The peer gets the file, then EOF — nothing written after end(). */
async function onlyTheFile(port: number, answers: boolean[]): Promise<void> {
  const c = net.connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  try {
    const got = untilEof(c, 'the file and EOF');
    c.write('q');
    const body = await got;
    assert.deepEqual(answers, [false, false, false], 'writes after end() return false');
    assert.ok(body.equals(fs.readFileSync(FILE)), `the file and nothing else (${body.length} bytes)`);
  } finally { c.destroy(); }
}

/** A session that half-closes at the peer's EOF (`atEof`) or on its first input, and never calls end(). */
function halfCloseOnly(atEof: boolean, closed: { yes: boolean; code?: string }): SessionFactory {
  return (conn) => ({
    data() { if (!atEof) conn.halfClose(); },
    end() { if (atEof) conn.halfClose(); },
    close(err) { closed.yes = true; closed.code = err?.code; },
  });
}

/** The peer sends a byte and its FIN (keeping its socket open): the server's EOF must come and the connection close. */
async function bothEnded(port: number, closed: { yes: boolean; code?: string }): Promise<void> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  try {
    await withTimeout(new Promise<void>((resolve) => c.once('connect', () => resolve())), 10000, 'connect');
    const eof = untilEof(c, 'the server\'s EOF');
    c.end('x');
    assert.equal((await eof).length, 0);
    await waitFor(() => closed.yes, 'the connection ended both ways to close by itself', { ms: 10000 });
    assert.equal(closed.code, undefined);
  } finally { c.destroy(); }
}

const TRANSPORTS = [...BACKENDS, 'net'] as const;

for (const transport of TRANSPORTS) {
  const skip = transport === 'net' ? false : skipFor(transport);
  describe(`Conn.halfClose() (${transport === 'net' ? 'serveNet' : `serveChannel, ${transport}`})`, { skip }, () => {
    it('sends what is queued, then EOF; keeps reading; refuses writes; closes cleanly at the peer\'s EOF', async () => {
      const seen: Seen[] = [];
      await withServer(transport, factory(seen), (port) => halfClosedExchange(port, seen));
    });

    it('halfClose() then end(): closed once sent, without the peer\'s FIN', async () => {
      const closed = { yes: false };
      await withServer(transport, halfThenEnd(closed), (port) => readAllKeepOpen(port, closed));
    });

    // (a regression test on io_uring: a connection half-closed and at the peer's EOF stayed open until server close)
    for (const atEof of [true, false]) {
      it(`ended both ways (${atEof ? 'halfClose() at the peer\'s EOF' : 'the peer\'s EOF after halfClose()'}): the connection closes by itself`, async () => {
        const closed: { yes: boolean; code?: string } = { yes: false };
        await withServer(transport, halfCloseOnly(atEof, closed), (port) => bothEnded(port, closed));
      });
    }

    // (a regression test on serveNet: the session's drain came after its end(), as the queued bytes went out; the end()
    // case passes on serveChannel either way: a guard there)
    for (const after of ['none', 'end', 'halfClose'] as const) {
      it(after === 'none' ? 'drain: called once the 8 MiB above the high-water mark are sent'
        : after === 'end' ? 'drain: never after end(), the 8 MiB still queued' : 'drain: once after halfClose(), the 8 MiB still queued (input goes on)', async () => {
        const drains = { n: 0, closed: false };
        const base = bigThen(after, drains);
        await withServer(transport, (conn) => ({ ...base(conn), drain() { drains.n++; } }), (port) => readBig(port, after, drains));
      });
    }

    // (a regression test on serveNet: its end() with a file still queued took later writes, and sent them before the close)
    it('writes after end() are refused, a file still queued or not', async () => {
      const answers: boolean[] = [];
      await withServer(transport, endWithFileQueued(answers), (port) => onlyTheFile(port, answers));
    });
  });
}

// serveChannel.close(deadline): at the deadline every connection still open is destroyed. A session's call made in the
// same turn, after that and before its 'disconnect' event, must do nothing — not throw the channel's MP_ERR_CLOSED
// (megapipe-http's lingering close calls end() from its own timer: an uncaught exception in the worker).
for (const backend of BACKENDS) {
  describe(`serveChannel.close(deadline): Conn calls after the deadline (${backend})`, { skip: skipFor(backend) }, () => {
    it('halfClose(), end(), write(), pause() and resume() in the deadline\'s timers phase do nothing', async () => {
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      let conn: Conn | undefined;
      let closedBefore: boolean | undefined, calls: string[] = [];
      const closed = { yes: false };
      const server = serveChannel(ch, listener, (c) => {
        conn = c;
        return { data() {}, shutdown() { /* keeps the connection: the deadline must end it */ }, close() { closed.yes = true; } };
      });
      const c = net.connect({ port: listener.port, host: '127.0.0.1' });
      c.on('error', () => {});
      try {
        await waitFor(() => conn !== undefined, 'the connection');
        const done = server.close(100);
        // the application's timer, due with the deadline's and made after it: the same timers phase, right after it
        const app = new Promise<void>((resolve) => setTimeout(() => {
          closedBefore = closed.yes;
          for (const [name, call] of [['halfClose', () => conn!.halfClose()], ['end', () => conn!.end()], ['write', () => conn!.write('x')],
            ['pause', () => conn!.pause()], ['resume', () => conn!.resume()]] as const) {
            try { const r = call(); calls.push(`${name}:${String(r)}`); } catch (e) { calls.push(`${name} threw ${(e as { code?: string }).code}`); }
          }
          resolve();
        }, 100));
        // hold the loop past both timers, so that they expire together (a busy worker)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
        await withTimeout(app, 10000, 'the application\'s timer');
        await withTimeout(done, 10000, 'server.close()');
        assert.equal(closedBefore, false, 'the calls ran between the deadline and the disconnect event');
        assert.deepEqual(calls, ['halfClose:undefined', 'end:undefined', 'write:false', 'pause:undefined', 'resume:undefined']);
        assert.ok(closed.yes);
      } finally {
        c.destroy();
        listener.close();
        ch.close();
      }
    });
  });
}
