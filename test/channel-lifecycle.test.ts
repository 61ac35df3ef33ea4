// Lifecycle: disconnect and unregister with operations in flight (a pending receive, a pending send, a multishot
// accept) end in exactly one final `disconnect` event per handle and nothing after it; handles are reused after many
// open/close rounds; operations on a closing or closed handle throw MP_ERR_CLOSED or MP_ERR_BAD_HANDLE; a process whose
// handles are all closed exits by itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { BACKENDS, connectSocket, echoClient, openListener, prng, randomBytes, readAll, skipFor, waitFor, withTimeout } from './helpers.js';
import { createChannel, listen, MegapipeError, type Channel, type Limits, type Listener, type MpEvent } from '../src/index.js';

interface Harness {
  ch: Channel;
  listener: Listener;
  lh: number;
  /** Handles of accepted connections, in order. */
  accepted: number[];
  /** Handles whose disconnect event arrived (count per handle generation is checked by `violations`). */
  gone: Set<number>;
  /** Events seen for a handle after its disconnect event (must stay empty), and duplicate disconnects. */
  violations: string[];
  errors: string[];
  on: (fn: (ev: MpEvent) => void) => void;
  close(): Promise<void>;
}

async function harness(backend: 'uring' | 'portable', autoRead = true, limits?: Partial<Limits>): Promise<Harness> {
  const ch = createChannel({ backend, limits });
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'L');
  const accepted: number[] = [], violations: string[] = [], errors: string[] = [];
  const gone = new Set<number>();
  let extra: ((ev: MpEvent) => void) | undefined;
  ch.onEvent((ev) => {
    const h = ev.handle;
    if (ev.type === 'accept') {
      if (h === lh) violations.push('accept event names the listener as the new handle');
      gone.delete(h);   // a reused handle id starts a new life
      accepted.push(h);
      if (autoRead) ch.read(h);
    } else if (gone.has(h)) violations.push(`${ev.type} on handle ${h} after its disconnect event`);
    else if (ev.type === 'read') {   // echo
      if (ev.result > 0) ch.write(h, ev.buffer, ev.offset, ev.result); else ch.disconnect(h);
    }
    if (ev.type === 'disconnect') gone.add(h);
    if (ev.type === 'error') errors.push(`${h}:${ev.code}`);
    extra?.(ev);
  });
  ch.accept(lh);
  return {
    ch, listener, lh, accepted, gone, violations, errors,
    on: (fn) => { extra = fn; },
    async close() {
      try {
        if (ch.isOpen(lh) && !gone.has(lh)) { try { ch.unregister(lh); } catch { /* closing already */ } }
        await waitFor(() => gone.has(lh), 'the listener handle to go');
      } finally { listener.close(); ch.close(); }
    },
  };
}

function assertCode(fn: () => unknown, codes: string[], what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MegapipeError, `${what}: a MegapipeError (got ${String(e)})`);
    assert.ok(codes.includes(e.code), `${what}: code ${e.code} is one of ${codes.join(', ')}`);
    return true;
  }, what);
}

/** Every per-handle operation, called on `h`; each must throw one of `codes`. */
async function everyOperationThrows(ch: Channel, h: number, codes: string[], label: string): Promise<void> {
  const data = Buffer.from('x');
  assertCode(() => ch.read(h), codes, `${label} read`);
  assertCode(() => ch.write(h, data), codes, `${label} write`);
  assertCode(() => ch.writev(h, [data, data]), codes, `${label} writev`);
  assertCode(() => ch.writeAscii(h, 'x'), codes, `${label} writeAscii`);
  assertCode(() => ch.pause(h), codes, `${label} pause`);
  assertCode(() => ch.resume(h), codes, `${label} resume`);
  assertCode(() => ch.disconnect(h), codes, `${label} disconnect`);
  assertCode(() => ch.unregister(h), codes, `${label} unregister`);
  assertCode(() => ch.accept(h), codes, `${label} accept`);
  assertCode(() => ch.setCookie(h, 1), codes, `${label} setCookie`);
  assertCode(() => ch.incomingCpu(h), codes, `${label} incomingCpu`);
  await assert.rejects(ch.toFd(h), (e: unknown) => e instanceof MegapipeError && codes.includes(e.code), `${label} toFd`);
}

for (const backend of BACKENDS) {
  describe(`lifecycle (${backend})`, { skip: skipFor(backend) }, () => {
    it('disconnect with a pending receive: one final disconnect event, the peer sees EOF', async () => {
      const hs = await harness(backend);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(hs.listener.port);
        const eof = readAll(s);
        await waitFor(() => hs.accepted.length === 1, 'the accept');
        const h = hs.accepted[0]!;
        hs.ch.disconnect(h);   // the receive is armed and idle
        assert.equal((await eof).byteLength, 0);
        await waitFor(() => hs.gone.has(h), 'the disconnect event');
        assert.equal(hs.ch.isOpen(h), false);
        assert.deepEqual(hs.violations, []);
      } finally { s?.destroy(); await hs.close(); }
    });

    it('abortive disconnect with a send in flight: final disconnect event, no error, nothing after it', async () => {
      const hs = await harness(backend);
      const big = randomBytes(prng(1), 8 * 1024 * 1024);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(hs.listener.port);
        s.pause();
        s.on('error', () => { /* reset by the abort */ });
        await waitFor(() => hs.accepted.length === 1, 'the accept');
        const h = hs.accepted[0]!;
        assert.equal(hs.ch.write(h, big), false);   // far above the high-water mark: a send is in flight
        assert.ok(hs.ch.pendingBytes(h) > 0);
        hs.ch.disconnect(h, true);
        await waitFor(() => hs.gone.has(h), 'the disconnect event');
        assert.equal(hs.ch.pendingBytes(h), 0);
        assert.deepEqual(hs.violations, []);
        assert.deepEqual(hs.errors, []);
      } finally { s?.destroy(); await hs.close(); }
    });

    // A peer that reads nothing until `between` has run: `big` is written, the connection disconnected gracefully,
    // then the peer reads; it must get every byte, then EOF, and the handle its disconnect event.
    async function allThenEof(hs: Harness, big: Buffer, between: (h: number) => void | Promise<void>): Promise<void> {
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(hs.listener.port);
        s.pause();
        await waitFor(() => hs.accepted.length === 1, 'the accept');
        const h = hs.accepted[0]!;
        hs.ch.write(h, big);
        hs.ch.disconnect(h);
        await between(h);
        const all = readAll(s, 60000);
        s.resume();
        const got = await all;
        assert.equal(got.byteLength, big.byteLength);
        assert.ok(got.equals(big));
        await waitFor(() => hs.gone.has(h), 'the disconnect event');
        assert.deepEqual(hs.violations, []);
        assert.deepEqual(hs.errors, []);
      } finally { s?.destroy(); await hs.close(); }
    }

    it('graceful disconnect with bytes queued: they are all sent first, then EOF', async () => {
      const hs = await harness(backend);
      const big = randomBytes(prng(2), 4 * 1024 * 1024);
      await allThenEof(hs, big, (h) => { assert.throws(() => hs.ch.write(h, big), /closing/); });
    });

    // One send chunk larger than the socket buffers: a write and a disconnect in one go put all queued bytes in one send
    // (the io_uring backend links the close behind it), and that send blocks while the peer does not read.
    const ONE_SEND = { sendChunkBytes: 16 * 1024 * 1024, sendArenaBytes: 32 * 1024 * 1024, highWaterMark: 32 * 1024 * 1024 };

    it('graceful disconnect right after a write that goes in one send: all bytes, then EOF', async () => {
      const hs = await harness(backend, true, ONE_SEND);
      const big = randomBytes(prng(4), 12 * 1024 * 1024);
      await allThenEof(hs, big, () => new Promise((r) => setTimeout(r, 50)));   // the send is blocked on the full socket meanwhile
    });

    it('abortive disconnect after a graceful one whose single send is blocked: final disconnect event, handle reusable', async () => {
      const hs = await harness(backend, true, ONE_SEND);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(hs.listener.port);
        s.pause();
        s.on('error', () => { /* reset by the abort */ });
        await waitFor(() => hs.accepted.length === 1, 'the accept');
        const h = hs.accepted[0]!;
        hs.ch.write(h, randomBytes(prng(5), 12 * 1024 * 1024));
        hs.ch.disconnect(h);
        await new Promise((r) => setTimeout(r, 50));
        assert.ok(hs.ch.isOpen(h), 'still sending');
        hs.ch.disconnect(h, true);
        await waitFor(() => hs.gone.has(h), 'the disconnect event');
        assert.equal(hs.ch.pendingBytes(h), 0);
        assert.deepEqual(hs.violations, []);
        assert.deepEqual(hs.errors, []);
        // the channel goes on serving (and may reuse the handle and its descriptor slot)
        assert.equal(await echoClient(hs.listener.port, Buffer.from('after')), 5);
      } finally { s?.destroy(); await hs.close(); }
    });

    it('deferred accept (TCP_DEFER_ACCEPT): a connection comes with its first bytes; a silent one comes later all the same', { skip: backend !== 'uring' ? 'deferAccept is an option of native listeners (listen()); the portable listener is node:net' : false }, async () => {
      const ch = createChannel({ backend });
      const listener = listen({ host: '127.0.0.1', port: 0, deferAccept: 1 });
      const lh = ch.register(listener, 'L');
      const accepted: number[] = [];
      const reads = new Map<number, string>();
      ch.onEvent((ev) => {
        if (ev.type === 'accept') { accepted.push(ev.handle); ch.read(ev.handle); }
        else if (ev.type === 'read' && ev.result > 0) reads.set(ev.handle, (reads.get(ev.handle) ?? '') + Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result)).toString());
      });
      ch.accept(lh);
      const socks: net.Socket[] = [];
      try {
        const silent = await connectSocket(listener.port);
        socks.push(silent);
        const talker = await connectSocket(listener.port);
        socks.push(talker);
        talker.write('hello');
        await waitFor(() => accepted.length >= 1 && reads.size >= 1, 'the talking connection and its bytes');
        assert.equal([...reads.values()][0], 'hello');
        await waitFor(() => accepted.length === 2, 'the silent connection, after the deferral');
        silent.write('late');
        await waitFor(() => [...reads.values()].includes('late'), 'the silent connection\'s bytes');
      } finally {
        for (const s of socks) s.destroy();
        ch.unregister(lh);
        await waitFor(() => !ch.isOpen(lh), 'the listener handle to go');
        listener.close(); ch.close();
      }
    });

    it('unregister a connection with a receive and a send in flight', async () => {
      const hs = await harness(backend);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(hs.listener.port);
        s.pause();
        s.on('error', () => { /* reset */ });
        await waitFor(() => hs.accepted.length === 1, 'the accept');
        const h = hs.accepted[0]!;
        hs.ch.write(h, randomBytes(prng(3), 4 * 1024 * 1024));
        hs.ch.unregister(h);
        await waitFor(() => hs.gone.has(h), 'the disconnect event');
        assert.deepEqual(hs.violations, []);
      } finally { s?.destroy(); await hs.close(); }
    });

    it('unregister a listener with a multishot accept armed; its handle then refuses operations', async () => {
      const hs = await harness(backend);
      try {
        await echoClient(hs.listener.port, Buffer.from('before'));   // the accept is live
        hs.ch.unregister(hs.lh);
        assertCode(() => hs.ch.accept(hs.lh), ['MP_ERR_CLOSED'], 'accept on a closing listener');
        await waitFor(() => hs.gone.has(hs.lh), 'the listener\'s disconnect event');
        assertCode(() => hs.ch.accept(hs.lh), ['MP_ERR_BAD_HANDLE'], 'accept on an unregistered listener');
        assertCode(() => hs.ch.unregister(hs.lh), ['MP_ERR_BAD_HANDLE'], 'unregister twice');
        assert.equal(hs.accepted.length, 1);
        assert.deepEqual(hs.violations, []);
        assert.equal(hs.ch.handles, 0);
      } finally { await hs.close(); }
    });

    it('operations on a closing or closed handle throw MP_ERR_CLOSED or MP_ERR_BAD_HANDLE', async () => {
      const hs = await harness(backend);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(hs.listener.port);
        await waitFor(() => hs.accepted.length === 1, 'the accept');
        const h = hs.accepted[0]!;
        hs.ch.disconnect(h);
        // closing (its disconnect event has not arrived yet): MP_ERR_CLOSED
        if (!hs.gone.has(h)) await everyOperationThrows(hs.ch, h, ['MP_ERR_CLOSED'], 'closing');
        await waitFor(() => hs.gone.has(h), 'the disconnect event');
        // gone: MP_ERR_BAD_HANDLE
        await everyOperationThrows(hs.ch, h, ['MP_ERR_BAD_HANDLE'], 'closed');
        assert.equal(hs.ch.pendingBytes(h), 0);
        assert.equal(hs.ch.isOpen(h), false);
        // numbers that never named a handle
        for (const bad of [9999, hs.ch.limits.maxHandles, -1]) assertCode(() => hs.ch.read(bad), ['MP_ERR_BAD_HANDLE'], `read(${bad})`);
        assert.deepEqual(hs.violations, []);
      } finally { s?.destroy(); await hs.close(); }
      // the whole channel closed: everything says MP_ERR_CLOSED
      assertCode(() => hs.ch.read(0), ['MP_ERR_CLOSED'], 'read on a closed channel');
      assertCode(() => hs.ch.write(0, Buffer.from('x')), ['MP_ERR_CLOSED'], 'write on a closed channel');
      assertCode(() => hs.ch.register(hs.listener), ['MP_ERR_CLOSED'], 'register on a closed channel');
      assertCode(() => hs.ch.connect('127.0.0.1', 9), ['MP_ERR_CLOSED'], 'connect on a closed channel');
      assert.equal(await hs.ch.dispatch(0).catch(() => 'rejected'), 'rejected');   // a handler is set
      hs.ch.onEvent(null);
      assert.equal(await hs.ch.dispatch(1000), null);
    });

    it('handles are reused: open many, close all, open as many again', async () => {
      const N = 300;
      const hs = await harness(backend);
      const rand = prng(4);
      const sockets: net.Socket[] = [];
      try {
        for (let round = 0; round < 3; round++) {
          const before = hs.accepted.length;
          const batch = await Promise.all(Array.from({ length: N }, () => connectSocket(hs.listener.port)));
          sockets.push(...batch);
          await waitFor(() => hs.accepted.length === before + N, `round ${round}: ${N} accepts`);
          const hsNow = hs.accepted.slice(before);
          assert.equal(new Set(hsNow).size, N, 'distinct handles');
          assert.equal(hs.ch.handles, N + 1);
          // every handle id fits in the first N+1: ids are reused, not leaked
          assert.ok(Math.max(...hsNow) <= N, `round ${round}: highest handle ${Math.max(...hsNow)}`);
          for (const h of hsNow) { hs.ch.setCookie(h, `r${round}`); hs.ch.disconnect(h, round === 1); }
          await waitFor(() => hsNow.every((h) => hs.gone.has(h)), `round ${round}: every disconnect event`);
          for (const s of batch) s.destroy();
          assert.equal(hs.ch.handles, 1);
        }
        // and they still work
        await echoClient(hs.listener.port, randomBytes(rand, 50_000));
        assert.deepEqual(hs.violations, []);
      } finally { for (const s of sockets) s.destroy(); await hs.close(); }
      assert.equal(hs.ch.handles, 0);
    });

    it('the process exits by itself when every handle is closed (no channel.close())', async () => {
      const child = spawn(process.execPath, [new URL('./fixtures/exit-child.js', import.meta.url).pathname, backend], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const code = await withTimeout(new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c))), 20000, 'the child to exit by itself')
        .catch((e) => { child.kill('SIGKILL'); throw e; });
      assert.equal(code, 0, `exit code (stderr: ${err})`);
      assert.match(out, /echoed 49\b/);
      assert.match(out, /closed/);
    });

    it('a readFile in flight keeps the process alive on a channel with no handle open (a top-level await finishes)', async () => {
      const script = `import { createChannel } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
        import { openSync } from 'node:fs';
        const ch = createChannel({ backend: '${backend}' });
        const b = await ch.readFile(openSync(${JSON.stringify(new URL(import.meta.url).pathname)}, 'r'), 0, 64);
        console.log('read ' + b.length);
        ch.close();`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const code = await withTimeout(new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c))), 20000, 'the child to exit')
        .catch((e) => { child.kill('SIGKILL'); throw e; });
      assert.equal(code, 0, `exit code (13: the await never finished; stderr: ${err})`);
      assert.match(out, /read 64/);
    });
  });
}
