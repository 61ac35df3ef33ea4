// Holding a receive buffer past its read event (zero-copy): a held buffer is not reused while other data flows
// through the ring, releasing it returns it, the number held is bounded, and misuse throws a clear error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, connectSocket, prng, randomBytes, skipFor, startEchoServer, uringSkip, waitFor, withTimeout } from './helpers.js';
import { resolveLimits } from '../src/index.js';
import type * as net from 'node:net';

const LIMITS = { recvBuffers: 16, recvBufferSize: 4096 };   // heldBuffersMax derives to 16 / 4 = 4

// Sends `data`, resolves once exactly `data` came back (compared byte for byte).
function roundTrip(s: net.Socket, data: Buffer): Promise<void> {
  return withTimeout(new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      if (Buffer.compare(d, data.subarray(got, got + d.byteLength)) !== 0) { s.off('data', onData); reject(new Error(`echo differs at ${got}`)); return; }
      got += d.byteLength;
      if (got === data.byteLength) { s.off('data', onData); resolve(); }
    };
    s.on('data', onData);
    s.write(data);
  }), 20000, 'the echo');
}

for (const backend of BACKENDS) {
  describe(`holdBuffer / releaseBuffer (${backend})`, { skip: skipFor(backend) }, () => {
    it('a held buffer keeps its bytes while the ring recycles the others; released, it serves again', async () => {
      const held: { token: number; view: Uint8Array; copy: Buffer }[] = [];
      const failures: string[] = [];
      let holding = true;
      const server = await startEchoServer(backend, {
        limits: LIMITS,
        tap(ev, ch) {
          if (ev.type !== 'read' || ev.result <= 0 || !holding) return;
          if (held.length < ch.limits.heldBuffersMax) {
            const token = ch.holdBuffer();
            const view = ev.buffer.subarray(ev.offset, ev.offset + ev.result);
            held.push({ token, view, copy: Buffer.from(view) });
          } else {
            try { ch.holdBuffer(); failures.push('a hold beyond heldBuffersMax succeeded'); }
            catch (e) { if ((e as { code?: string }).code !== 'MP_ERR_LIMIT') failures.push(`beyond the limit: ${String(e)}`); }
            holding = false;
          }
        },
      });
      try {
        assert.equal(server.ch.limits.heldBuffersMax, 4);
        const s = await connectSocket(server.port);
        const rand = prng(11);
        // four small messages, one at a time: four read events, four held buffers
        for (let i = 0; i < 4; i++) await roundTrip(s, randomBytes(rand, 100 + i));
        assert.equal(held.length, 4);
        assert.equal(server.ch.heldBuffers, 4);
        // 2 MiB through the 12 buffers left: each is reused many times (and a fifth hold is refused)
        await roundTrip(s, randomBytes(rand, 2 << 20));
        assert.deepEqual(failures, []);
        assert.equal(holding, false, 'the fifth read tried a hold');
        for (const h of held) assert.ok(Buffer.from(h.view).equals(h.copy), 'a held buffer was overwritten');
        // a token not held, and a double release, throw RangeError
        assert.throws(() => server.ch.releaseBuffer(-5), RangeError);
        for (const h of held) server.ch.releaseBuffer(h.token);
        assert.throws(() => server.ch.releaseBuffer(held[0]!.token), RangeError);
        assert.equal(server.ch.heldBuffers, 0);
        // all 16 buffers serve again
        await roundTrip(s, randomBytes(rand, 1 << 20));
        assert.equal(server.errors.length, 0, server.errors.join());
        s.destroy();
        await waitFor(() => server.conns.size === 0, 'the connection to go');
      } finally {
        await server.close();
      }
    });

    it('hold and release in the same handler returns the buffer once: the buffers other connections hold keep their bytes', async () => {
      // connection A holds the buffer of each of its reads (the oldest released when heldBuffersMax are held) and checks
      // every held buffer against a copy at each event; connection B holds and releases in the same handler. A buffer
      // returned twice would sit in the ring twice: the kernel would then receive into it while A holds it.
      const held: { token: number; view: Uint8Array; copy: Buffer }[] = [];
      const failures: string[] = [];
      let aHandle = -1, checks = 0;
      const checkHeld = () => {
        checks++;
        for (const h of held) if (!Buffer.from(h.view).equals(h.copy)) { failures.push(`a held buffer of A changed (token ${h.token})`); return; }
      };
      const server = await startEchoServer(backend, {
        limits: LIMITS,
        tap(ev, ch) {
          if (ev.type === 'accept' && aHandle < 0) aHandle = ev.handle;
          if (ev.type !== 'read' || ev.result <= 0) return;
          checkHeld();
          let token: number;
          try { token = ch.holdBuffer(); } catch (e) {
            // bytes that arrived while the connection was paused (above its high-water mark) come as copies: nothing to hold
            if ((e as { code?: string }).code !== 'MP_ERR_STATE') failures.push(String(e));
            return;
          }
          if (ev.handle === aHandle) {
            const view = ev.buffer.subarray(ev.offset, ev.offset + ev.result);
            held.push({ token, view, copy: Buffer.from(view) });
            // A holds at most heldBuffersMax - 1 (B needs one for its hold-and-release)
            if (held.length === ch.limits.heldBuffersMax) ch.releaseBuffer(held.shift()!.token);
          } else {
            ch.releaseBuffer(token);
          }
        },
      });
      try {
        const a = await connectSocket(server.port);
        await waitFor(() => aHandle >= 0, 'A accepted');
        const b = await connectSocket(server.port);
        const rand = prng(12);
        for (let round = 0; round < 8; round++) {
          await Promise.all([roundTrip(a, randomBytes(rand, 3000 + round * 5000)), roundTrip(b, randomBytes(rand, 256 * 1024))]);
        }
        assert.deepEqual(failures, []);
        assert.ok(checks > 20, `held buffers checked at ${checks} events`);
        if (backend === 'uring') assert.equal(server.ch.stats().recycleRefused, 0, 'no buffer was returned to the ring twice');
        for (const h of held) server.ch.releaseBuffer(h.token);
        held.length = 0;
        await roundTrip(b, randomBytes(rand, 1 << 20));
        assert.equal(server.errors.length, 0, server.errors.join());
        a.destroy(); b.destroy();
        await waitFor(() => server.conns.size === 0, 'the connections to go');
      } finally {
        await server.close();
      }
    });

    it('holdBuffer() outside a read handler throws MP_ERR_STATE', async () => {
      const server = await startEchoServer(backend, { limits: LIMITS });
      try {
        assert.throws(() => server.ch.holdBuffer(), (e: unknown) => (e as { code?: string }).code === 'MP_ERR_STATE');
      } finally {
        await server.close();
      }
    });
  });
}

describe('heldBuffersMax limit', () => {
  it('is checked against the receive ring (at most half of it)', () => {
    assert.equal(resolveLimits({ recvBuffers: 64 }).heldBuffersMax, 16);
    assert.throws(() => resolveLimits({ recvBuffers: 16, heldBuffersMax: 9 }), (e: unknown) => e instanceof RangeError && /heldBuffersMax/.test(e.message));
    assert.equal(resolveLimits({ recvBuffers: 16, heldBuffersMax: 8 }).heldBuffersMax, 8);
  });
});

describe('the receive ring refuses a buffer returned twice or out of range (uring, white-box)', { skip: uringSkip }, () => {
  it('duplicate and out-of-range ids are refused and counted; the ring stays whole', async () => {
    const server = await startEchoServer('uring', { limits: LIMITS });
    try {
      // stage ids the native side must refuse, as a bug in the TypeScript side would: 3 (in the ring already: every
      // buffer is while nothing is received), 999 and -1 (out of range)
      const internals = server.ch as unknown as { batch: { recycle(bid: number): void; flush(): void } };
      for (const id of [3, 999, -1]) internals.batch.recycle(id);
      internals.batch.flush();
      assert.equal(server.ch.stats().recycleRefused, 3);
      // every buffer serves, none twice: 2 MiB through a 16-buffer ring, echoed byte for byte
      const s = await connectSocket(server.port);
      await roundTrip(s, randomBytes(prng(13), 2 << 20));
      assert.equal(server.ch.stats().recycleRefused, 3, 'nothing else refused');
      s.destroy();
      await waitFor(() => server.conns.size === 0, 'the connection to go');
    } finally {
      await server.close();
    }
  });
});
