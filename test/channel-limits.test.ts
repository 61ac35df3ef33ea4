// Limits: the channel under deliberately tiny resources loses nothing, and accounts for every connection (one
// disconnect event each, only the listener handle left, stats() agreeing with the clients' bytes).
// (More forced faults, and the smallest rings, are in channel-faults.test.ts.)
// - receive-buffer ring exhaustion (4 buffers of 64 B) with many connections sending: every byte echoed, and the
//   io_uring backend counts the -ENOBUFS re-arms;
// - completion-queue overflow forced with tiny rings (8 SQ entries, 16 CQ entries, 8 request rows, 16 event rows):
//   every byte echoed;
// - direct-descriptor table exhaustion (8 slots, 32 connections held open): all 32 served, the listener reports
//   MP_ERR_TABLE_FULL once, and the connections beyond the table are regular fds;
// - invalid limits throw TypeError/RangeError naming the limit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { BACKENDS, connectSocket, echoClient, prng, randomBytes, skipFor, startEchoServer, waitFor, withTimeout, type EchoServer } from './helpers.js';
import { createChannel, resolveLimits } from '../src/index.js';

/** After the clients: every connection had its disconnect event, only the listener is left, stats() agree (`n` conns, `bytes` each way). */
async function accounted(server: EchoServer, n: number, bytes: number): Promise<void> {
  await waitFor(() => server.conns.size === 0, 'every connection to close');
  assert.equal(server.counts.disconnected, n, 'one disconnect event per connection');
  assert.equal(server.ch.handles, 1, 'only the listener handle is left');
  const st = server.ch.stats();
  assert.equal(st.accepted, n);
  assert.equal(st.bytesRead, bytes);
  assert.equal(st.bytesWritten, bytes);
}

for (const backend of BACKENDS) {
  describe(`limits (${backend})`, { skip: skipFor(backend) }, () => {
    it('receive-buffer ring exhaustion (4 × 64 B): no byte lost', async () => {
      const server = await startEchoServer(backend, { limits: { recvBuffers: 4, recvBufferSize: 64 } });
      const rand = prng(21);
      try {
        const sizes = Array.from({ length: 60 }, (_, i) => 1 + ((i * 7919) % 150_000));
        const got = await withTimeout(Promise.all(sizes.map((n) => echoClient(server.port, randomBytes(rand, n), { timeoutMs: 90000 }))), 120000, 'echo clients');
        assert.deepEqual(got, sizes);
        assert.deepEqual(server.errors, []);
        const st = server.ch.stats();
        if (backend === 'uring') assert.ok(st.enobufs > 0, `enobufs ${st.enobufs} > 0`);
        await accounted(server, sizes.length, sizes.reduce((a, b) => a + b, 0));
      } finally { await server.close(); }
    });

    it('completion-queue overflow (8 SQ, 16 CQ entries, 8 request rows, 16 event rows): no byte lost', async () => {
      const limits = { sqEntries: 8, cqEntries: 16, requestRows: 8, eventRows: 16 };
      const server = await startEchoServer(backend, { limits });
      const rand = prng(22);
      try {
        const sizes = Array.from({ length: 300 }, (_, i) => 1 + ((i * 104_729) % 60_000));
        const got = await withTimeout(Promise.all(sizes.map((n) => echoClient(server.port, randomBytes(rand, n), { timeoutMs: 90000 }))), 120000, 'echo clients');
        assert.deepEqual(got, sizes);
        assert.equal(server.counts.accepted, sizes.length);
        assert.deepEqual(server.errors, []);
        const st = server.ch.stats();
        if (backend === 'uring') {
          assert.equal(server.ch.features.cqEntries, 16);
          // 300 connections against a 16-entry CQ: the kernel held completions back and the channel flushed them
          assert.ok(st.cqOverflows > 0, `cqOverflows ${st.cqOverflows} > 0`);
        }
        await accounted(server, sizes.length, sizes.reduce((a, b) => a + b, 0));
      } finally { await server.close(); }
    });

    it('send-memory exhaustion (a 64 KiB arena for 50 busy connections): no byte lost', async () => {
      const server = await startEchoServer(backend, { limits: { sendArenaBytes: 65536, sendChunkBytes: 16384 } });
      const rand = prng(24);
      try {
        const sizes = Array.from({ length: 50 }, (_, i) => 200_000 + i * 1000);
        const got = await withTimeout(Promise.all(sizes.map((n) => echoClient(server.port, randomBytes(rand, n), { timeoutMs: 60000 }))), 90000, 'echo clients');
        assert.deepEqual(got, sizes);
        assert.deepEqual(server.errors, []);
        await accounted(server, sizes.length, sizes.reduce((a, b) => a + b, 0));
      } finally { await server.close(); }
    });

    it('a send arena that is not a page multiple (1,000 chunks of 1,000 B): no-copy writes on every chunk, the highest too', async () => {
      // 20 connections × 100 no-copy pieces of 2,000 B, each piece its own marker chunk: more than the 1,000 chunks, so
      // the highest ones are used (and reused from completions as readers drain). The addon page-rounds the arena to
      // 1,003,520 B; its tail beyond the last whole chunk must not count as chunks without reference slots.
      const limits = { sendChunkBytes: 1000, sendArenaBytes: 1_000_000, noCopyMinBytes: 0 };
      const rand = prng(25);
      const streams = Array.from({ length: 20 }, () => Array.from({ length: 100 }, () => randomBytes(rand, 2000)));
      let next = 0;
      const server = await startEchoServer(backend, {
        limits,
        tap(ev, ch) {
          if (ev.type !== 'accept') return;
          for (const piece of streams[next++]!) ch.writeNoCopy(ev.handle, piece);
          ch.end(ev.handle);
        },
      });
      try {
        const got = await withTimeout(Promise.all(streams.map(async () => {
          const s = await connectSocket(server.port);
          const parts: Buffer[] = [];
          s.on('data', (d: Buffer) => parts.push(d));
          await new Promise<void>((resolve, reject) => { s.once('end', () => resolve()); s.once('error', reject); });
          s.destroy();
          return Buffer.concat(parts);
        })), 60000, 'the clients to read every stream');
        const want = streams.map((st) => Buffer.concat(st)).sort(Buffer.compare);
        got.sort(Buffer.compare).forEach((b, i) => assert.ok(b.equals(want[i]!), `stream ${i} arrived intact`));
        assert.deepEqual(server.errors, []);
        if (backend === 'uring') assert.equal(server.ch.stats().requestsRefused, 0);
      } finally { await server.close(); }
    });

    it('maxHandles reached: the extra connection is refused with MP_ERR_LIMIT, and accepting goes on once a handle frees', async () => {
      const server = await startEchoServer(backend, { limits: { maxHandles: 4 } });   // the listener + 3 connections
      const held: net.Socket[] = [];
      try {
        for (let i = 0; i < 3; i++) held.push(await connectSocket(server.port));
        await waitFor(() => server.counts.accepted === 3, '3 accepts');
        await assert.rejects(echoClient(server.port, Buffer.from('one too many'), { timeoutMs: 10000 }), /EOF after 0 B|ECONNRESET/);
        assert.deepEqual(server.listenerErrors, ['MP_ERR_LIMIT']);
        held.shift()!.destroy();
        await waitFor(() => server.conns.size === 2, 'a handle to free');
        assert.equal(await echoClient(server.port, Buffer.from('room again')), 10);
      } finally { for (const s of held) s.destroy(); await server.close(); }
    });

    it('direct-descriptor table exhaustion (8 slots, 32 connections): all served, MP_ERR_TABLE_FULL, fd fallback', async (t) => {
      if (backend === 'portable') { t.skip('the portable backend has no direct-descriptor table (its connections are node:net sockets)'); return; }
      const server = await startEchoServer(backend, { limits: { files: 8 } });
      const rand = prng(23);
      const held: net.Socket[] = [];
      try {
        // 32 connections open at once (each sends one byte and waits, so all 32 are accepted and alive together)
        for (let i = 0; i < 32; i++) held.push(await connectSocket(server.port));
        await waitFor(() => server.counts.accepted === 32, '32 accepts');
        const lw = [...server.conns].filter((h) => server.ch.isLwsocket(h)).length;
        assert.ok(lw <= 8, `${lw} lwsockets fit the 8-slot table`);
        assert.equal(lw, 8 - 0, 'the table is used before falling back');
        assert.equal(server.conns.size - lw, 24, 'the rest are regular fds');
        assert.deepEqual(server.listenerErrors, ['MP_ERR_TABLE_FULL']);
        assert.ok(server.ch.stats().tableFullFallbacks > 0);
        // every one of them echoes
        const payloads = held.map((_, i) => randomBytes(rand, 1000 + i * 3000));
        const echoed = held.map((s, i) => new Promise<void>((resolve, reject) => {
          let got = 0;
          s.on('data', (d: Buffer) => {
            if (!d.equals(payloads[i]!.subarray(got, got + d.byteLength))) reject(new Error(`connection ${i}: bytes differ`));
            got += d.byteLength;
            if (got === payloads[i]!.byteLength) resolve();
          });
          s.write(payloads[i]!);
        }));
        await withTimeout(Promise.all(echoed), 30000, 'all 32 echoes');
        for (const s of held) s.end();
        await waitFor(() => server.conns.size === 0, 'all 32 to close');
        // slots are free again: new connections are lwsockets again
        let sawLw = false;
        const probe = await connectSocket(server.port);
        held.push(probe);
        await waitFor(() => server.conns.size === 1, 'one more accept');
        sawLw = server.ch.isLwsocket([...server.conns][0]!);
        assert.ok(sawLw, 'back to lwsockets once slots are free');
        await echoClient(server.port, randomBytes(rand, 10_000));
        assert.deepEqual(server.errors, []);
      } finally { for (const s of held) s.destroy(); await server.close(); }
    });

    it('a nearly full table (4200 slots, 300 connections held): the multishot accept gives way to reserved single accepts, nothing lost', async (t) => {
      // a multishot direct accept runs only while more slots are free than an accept queue can hold (somaxconn + 64);
      // with 4200 slots that is the first ~40 connections, then one accept at a time, each with its slot reserved
      if (backend === 'portable') { t.skip('the portable backend has no direct-descriptor table'); return; }
      const server = await startEchoServer(backend, { limits: { files: 4200 } });
      const held: net.Socket[] = [];
      try {
        const batch = await Promise.all(Array.from({ length: 300 }, () => connectSocket(server.port)));
        held.push(...batch);
        await waitFor(() => server.counts.accepted === 300, '300 accepts');
        assert.equal([...server.conns].filter((h) => server.ch.isLwsocket(h)).length, 300, 'all lwsockets');
        assert.deepEqual(server.listenerErrors, []);
        const rand = prng(25);
        await withTimeout(Promise.all(held.map((s) => new Promise<void>((resolve, reject) => {
          const p = randomBytes(rand, 100);
          s.once('data', (d: Buffer) => (d.equals(p) ? resolve() : reject(new Error('bytes differ'))));
          s.write(p);
        }))), 30000, '300 echoes');
      } finally { for (const s of held) s.destroy(); await server.close(); }
    });
  });
}

describe('invalid limits', () => {
  const cases: [Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    [{ recvBuffers: 3 }, RangeError, /limits\.recvBuffers/],
    [{ recvBuffers: 65536 }, RangeError, /limits\.recvBuffers/],
    [{ sqEntries: -1 }, TypeError, /limits\.sqEntries/],
    [{ sqEntries: 1.5 }, TypeError, /limits\.sqEntries/],
    [{ sqEntries: '8' }, TypeError, /limits\.sqEntries/],
    [{ cqEntries: 4, sqEntries: 8 }, RangeError, /limits\.cqEntries/],
    [{ requestRows: 2000, sqEntries: 1024 }, RangeError, /limits\.requestRows/],
    [{ eventRows: 100, cqEntries: 64, sqEntries: 8 }, RangeError, /limits\.eventRows/],
    [{ recvBufferSize: 16 }, RangeError, /limits\.recvBufferSize/],
    [{ highWaterMark: 100, lowWaterMark: 100 }, RangeError, /limits\.lowWaterMark/],
    [{ batch: 0 }, RangeError, /limits\.batch/],
    [{ files: 0 }, RangeError, /limits\.files/],
    [{ files: 10_000_000 }, RangeError, /limits\.files/],
    [{ sendArenaBytes: 100_000, sendChunkBytes: 16384 }, RangeError, /limits\.sendArenaBytes/],
    [{ maxPendingConnects: 0 }, RangeError, /limits\.maxPendingConnects/],
    [{ nonsense: 1 }, TypeError, /limits\.nonsense/],
  ];
  for (const backend of BACKENDS) {
    it(`createChannel({backend: '${backend}', limits}) throws naming the limit`, { skip: skipFor(backend) }, () => {
      for (const [limits, type, name] of cases) {
        assert.throws(() => createChannel({ backend, limits: limits as never }), (e: unknown) => {
          assert.ok(e instanceof type, `${JSON.stringify(limits)}: ${type.name} (got ${(e as Error).name}: ${(e as Error).message})`);
          assert.match((e as Error).message, name);
          return true;
        });
      }
      assert.throws(() => createChannel({ backend, batch: 0 }), (e: unknown) => e instanceof RangeError && /batch/.test((e as Error).message));
      assert.throws(() => createChannel({ backend, batch: 1.5 }), (e: unknown) => e instanceof TypeError && /batch/.test((e as Error).message));
    });
  }
  for (const backend of BACKENDS) {
    // createChannel spreads `options.limits` before checking it, so a number or string passes as "no overrides";
    it(`createChannel({backend: '${backend}', limits: 5}) throws a TypeError naming limits`, { skip: skipFor(backend) }, () => {
      assert.throws(() => createChannel({ backend, limits: 5 as never }), (e: unknown) => e instanceof TypeError && /limits/.test((e as Error).message));
    });
  }
  it('resolveLimits(5) throws a TypeError naming limits', () => {
    assert.throws(() => resolveLimits(5 as never), (e: unknown) => e instanceof TypeError && /limits/.test((e as Error).message));
  });
  it('resolveLimits derives dependent limits and keeps them consistent', () => {
    // only sqEntries given: requestRows, cqEntries, eventRows and batch follow it (this used to throw on batch)
    const l = resolveLimits({ sqEntries: 8 });
    assert.ok(l.requestRows <= 8 && l.cqEntries >= 16 && l.batch <= l.requestRows && l.eventRows <= l.cqEntries);
    const m = resolveLimits({ files: 8 });
    assert.equal(m.maxHandles, 8 + 1024);
    const w = resolveLimits({ highWaterMark: 1000 });
    assert.equal(w.lowWaterMark, 250);
  });
});
