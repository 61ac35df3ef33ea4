// Holding a receive buffer past its read event (zero-copy): a held buffer is not reused while other data flows
// through the ring, releasing it returns it, the number held is bounded, and misuse throws a clear error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, connectSocket, prng, randomBytes, skipFor, startEchoServer, waitFor, withTimeout } from './helpers.js';
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
            const view = ev.buffer!.subarray(ev.offset, ev.offset + ev.result);
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
