// writeNoCopy: bytes sent from the caller's buffer itself (io_uring: a reference slot of the native core; portable:
// node:net's own no-copy write), in order with write/writeAscii/sendFile, across a small send arena; the channel keeps
// the buffer alive until it is sent; a peer that resets mid-send fails only its connection; arguments are checked.
// On io_uring the same cases run with every write sent without a copy (noCopyMinBytes: 0).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { connectSocket, prng, randomBytes, readAll, skipFor, startChannelServer, waitFor } from './helpers.js';
import { createChannel, type Channel, type Limits } from '../src/index.js';

const VARIANTS = [
  { name: 'uring', backend: 'uring', limits: {} },
  { name: 'uring, every write without a copy', backend: 'uring', limits: { noCopyMinBytes: 0 } },
  { name: 'portable', backend: 'portable', limits: {} },
] as const satisfies readonly { name: string; backend: 'uring' | 'portable'; limits: Partial<Limits> }[];

/** V8's collector, to show that the channel (not the test) keeps written buffers alive. */
function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

const content = randomBytes(prng(17), 300_000);
let dir: string;
let fd: number;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-nocopy-'));
  writeFileSync(join(dir, 'f'), content);
  fd = openSync(join(dir, 'f'), 'r');
});
after(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

const text = (s: string) => Buffer.from(s, 'latin1');

for (const variant of VARIANTS) {
  const { backend } = variant;
  const server = (onConn: (ch: Channel, h: number) => void, limits: Partial<Limits> = {}) => startChannelServer(backend, onConn, { ...variant.limits, ...limits });
  describe(`writeNoCopy (${variant.name})`, { skip: skipFor(backend) }, () => {
    it('sends the bytes in order with write, writeAscii and sendFile, byte for byte, on many connections at once', async () => {
      const big = randomBytes(prng(3), 200_000);
      const pieces: [number, number][] = [[0, 200_000], [1, 9000], [150_000, 50_000], [7, 100], [199_999, 1], [0, 0]];
      let sent = 0;
      const srv = await server((ch, h) => {
        const [off, len] = pieces[h % pieces.length]!;
        ch.writeAscii(h, `head ${off} ${len}|`);
        ch.writeNoCopy(h, big, off, len);
        ch.write(h, text('|mid|'));
        ch.writeNoCopy(h, big.subarray(off, off + len));   // a view: its own offset into the same memory
        void ch.sendFile(h, fd, 0, 20_000).then(() => {
          ch.writeNoCopy(h, big);
          ch.writeAscii(h, '|end');
          ch.disconnect(h);
          sent++;
        });
      });
      try {
        const replies = await Promise.all(Array.from({ length: 12 }, async () => readAll(await connectSocket(srv.listener.port), 30000)));
        for (const got of replies) {
          const m = /^head (\d+) (\d+)\|/.exec(got.subarray(0, 40).toString('latin1'));
          assert.ok(m, 'the head comes first');
          const off = Number(m[1]), len = Number(m[2]);
          const part = big.subarray(off, off + len);
          const expect = Buffer.concat([text(m[0]), part, text('|mid|'), part, content.subarray(0, 20_000), big, text('|end')]);
          assert.equal(got.length, expect.length, `reply length for ${off}+${len}`);
          assert.ok(got.equals(expect), `reply bytes for ${off}+${len}`);
        }
        await waitFor(() => sent === 12, 'every connection to finish');
        assert.equal(srv.errors.size, 0);
        const nc = srv.ch.stats().writesNoCopy;
        if (backend === 'portable') assert.equal(nc, 0, 'the portable backend has no send arena to skip');
        else if (variant.name === 'uring, every write without a copy') assert.ok(nc >= 12 * 3 - 4, `every non-empty one without a copy (${nc})`);
        else assert.ok(nc >= 12 + 10 && nc <= 12 * 3, `those of at least limits.noCopyMinBytes without a copy (${nc})`);
      } finally { await srv.stop(); }
    });

    it('keeps the buffers alive until they are sent (the writer drops them; collected garbage does not corrupt them)', async () => {
      const gc = gcFunction();
      const n = 32, size = 256 * 1024;   // 8 MiB: more than the socket buffers of both ends take from a peer that does not read
      const expect: Buffer[] = [];
      for (let k = 0; k < n; k++) expect.push(randomBytes(prng(100 + k), size));
      let conn = -1;
      const srv = await server((ch, h) => {
        conn = h;
        // fresh buffers, referenced only by the channel once this returns; far above the high-water mark
        for (let k = 0; k < n; k++) ch.writeNoCopy(h, Buffer.from(expect[k]!));
        ch.disconnect(h);
        gc();
        for (let k = 0; k < 64; k++) Buffer.alloc(size, 0xee);   // memory a freed buffer's bytes could be reused for
      });
      try {
        const s = await connectSocket(srv.listener.port);
        s.pause();   // the bytes wait in the channel while it collects garbage
        await waitFor(() => conn >= 0, 'the connection');
        assert.ok(srv.ch.pendingBytes(conn) > 0, `bytes still queued in the channel when garbage is collected (${srv.ch.pendingBytes(conn)})`);
        gc();
        s.resume();
        const got = await readAll(s, 30000);
        assert.equal(got.length, n * size);
        assert.ok(got.equals(Buffer.concat(expect)), 'every byte as written');
      } finally { await srv.stop(); }
    });

    it('shares a small send arena: writes past the chunk budget wait their turn, in order', async () => {
      const big = randomBytes(prng(9), 40_000);
      const conns = 10, rounds = 30;
      const srv = await server((ch, h) => {
        for (let k = 0; k < rounds; k++) {
          ch.writeAscii(h, `<${k}>`);
          ch.writeNoCopy(h, big, k * 100, 20_000 + k);
        }
        ch.disconnect(h);
      }, { sendArenaBytes: 128 * 1024, sendChunkBytes: 16 * 1024, highWaterMark: 64 * 1024, lowWaterMark: 16 * 1024 });
      try {
        const expect = Buffer.concat(Array.from({ length: rounds }, (_, k) => [text(`<${k}>`), big.subarray(k * 100, k * 100 + 20_000 + k)]).flat());
        const replies = await Promise.all(Array.from({ length: conns }, async () => readAll(await connectSocket(srv.listener.port), 60000)));
        for (const got of replies) assert.ok(got.equals(expect), 'every connection gets its bytes in order');
      } finally { await srv.stop(); }
    });

    it('a peer that resets mid-send fails only its own connection', async () => {
      const big = randomBytes(prng(11), 4 * 1024 * 1024);
      const handles: number[] = [];   // in accept order: [the connection that resets, the other one]
      const srv = await server((ch, h) => {
        if (handles.push(h) === 1) {
          for (let i = 0; i < 8; i++) ch.writeNoCopy(h, big);   // 32 MiB: far more than the peer will take
        } else {
          ch.writeNoCopy(h, big, 0, 1_000_000);
          ch.disconnect(h);
        }
      });
      try {
        // both connections are open at once (distinct handles), neither peer reading yet
        const s1 = await connectSocket(srv.listener.port);
        s1.pause();
        await waitFor(() => handles.length === 1, 'the first connection');
        const s2 = await connectSocket(srv.listener.port);
        s2.pause();
        await waitFor(() => handles.length === 2, 'the second connection');
        const [reset, other] = handles as [number, number];
        assert.ok(srv.ch.pendingBytes(reset) > 0, 'the first connection has bytes queued when its peer resets');
        s1.resetAndDestroy();
        await waitFor(() => srv.closed.has(reset), 'the reset connection to close');
        const all = readAll(s2, 30000);
        s2.resume();
        const got = await all;
        assert.ok(got.equals(big.subarray(0, 1_000_000)), 'the other connection gets its bytes');
        await waitFor(() => srv.closed.has(other), 'the other connection to close');
        assert.equal(srv.errors.get(other), undefined, 'no error on the other connection');
        for (const code of srv.errors.get(reset) ?? []) assert.match(code, /^(ECONNRESET|EPIPE)$/, 'the reset connection fails with the peer\'s reset');
      } finally { await srv.stop(); }
    });

    it('checks its arguments like write and names the bad one', async () => {
      const srv = await server(() => undefined);
      const ch = srv.ch;
      try {
        const s = await connectSocket(srv.listener.port);
        await waitFor(() => ch.stats().accepted === 1, 'the connection');
        const h = [...Array(64).keys()].find((x) => ch.isOpen(x) && x !== srv.lh)!;
        const b = Buffer.alloc(10_000);
        const named = (what: RegExp) => (e: Error & { code?: string }) => /^MP_ERR_(INVALID_ARG|OUT_OF_RANGE)$/.test(e.code ?? '') && what.test(e.message);
        assert.throws(() => ch.writeNoCopy(h, 'text' as unknown as Uint8Array), named(/^data /));
        assert.throws(() => ch.writeNoCopy(h, b, -1), named(/^offset /));
        assert.throws(() => ch.writeNoCopy(h, b, 0, 10_001), named(/length/));
        assert.throws(() => ch.writeNoCopy(9999, b), (e: Error & { code?: string }) => e.code === 'MP_ERR_BAD_HANDLE');
        assert.equal(ch.writeNoCopy(h, b), true, 'below the high-water mark');
        s.destroy();
      } finally { await srv.stop(); }
      assert.throws(() => ch.writeNoCopy(0, Buffer.alloc(1)), (e: Error & { code?: string }) => e.code === 'MP_ERR_CLOSED' || e.code === 'MP_ERR_BAD_HANDLE');
    });
  });
}

describe('limits.noCopyMinBytes', () => {
  it('is checked like the other limits', () => {
    assert.throws(() => createChannel({ backend: 'portable', limits: { noCopyMinBytes: -1 } }), /noCopyMinBytes/);
    assert.throws(() => createChannel({ backend: 'portable', limits: { noCopyMinBytes: 2 ** 31 } }), /noCopyMinBytes/);
  });
});
