// A file truncated before or while sendFile sends it, on each path: io_uring reading into the send arena, splicing,
// sendfile(2) (a resident region), and the portable backend. What each can know: a read past the new end comes back
// short (the read paths), a splice from the file returns 0, sendfile(2) returns 0 — each fails the send with
// MP_ERR_SHORT_FILE (the promise rejects, an `error` event fails the connection) and never pads or hangs. What
// zero-copy cannot know: bytes already handed to the kernel by reference to the page cache (in the splice pipe, in the
// socket buffers — on loopback even in the peer's receive queue) that lie past the new end, in the page or large folio
// that holds it, become zeros; later pages keep their old bytes. The read paths send copies, made when read. Each case
// bounded in time, every byte checked; another connection, in the middle of its own file at the time, gets it whole.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as net from 'node:net';
import { connectSocket, prng, randomBytes, receiveUntilClosed, skipFor, startChannelServer, tcpQueues, uringSkip, waitFor, type ChannelServer } from './helpers.js';
import type { Channel, Limits } from '../src/index.js';
import { native } from '../src/native.js';

const spliceSkip: string | false = uringSkip || (native?.probe().ops?.includes(30) && native.probe().ops?.includes(6) ? false : 'the kernel has no IORING_OP_SPLICE or IORING_OP_POLL_ADD');
const sendfileSkip: string | false = uringSkip || (native?.probe().ops?.includes(54) && native.fileCached(0, 0, 1) !== -38 ? false : 'the kernel has no cachestat or IORING_OP_FIXED_FD_INSTALL');

/** zeroCopy: the bytes go by reference to the page cache (a truncation can change those in flight). */
const VARIANTS = [
  { name: 'uring, read into the send arena', backend: 'uring', limits: { splicePipes: 0, sendfileMinBytes: 0 }, skip: false, zeroCopy: false, stat: '' },
  { name: 'uring, spliced', backend: 'uring', limits: { spliceMinBytes: 0, sendfileMinBytes: 0 }, skip: spliceSkip, zeroCopy: true, stat: 'filesSpliced' },
  { name: 'uring, sendfile', backend: 'uring', limits: { sendfileMinBytes: 1 }, skip: sendfileSkip, zeroCopy: true, stat: 'filesSentfile' },
  { name: 'portable', backend: 'portable', limits: {}, skip: false, zeroCopy: false, stat: '' },
] as const;

const BIG = 48 << 20;     // more than loopback's socket buffers hold: a peer that does not read stalls the send
const OTHER = 8 << 20;    // the other connection's file: also more than they hold
const SMALL = 700_000;
let dir: string, bigContent: Buffer, otherContent: Buffer, smallContent: Buffer, otherFd: number;
let serial = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-truncated-'));
  bigContent = randomBytes(prng(41), BIG);
  otherContent = randomBytes(prng(42), OTHER);
  smallContent = randomBytes(prng(43), SMALL);
  writeFileSync(join(dir, 'other'), otherContent);   // just written: in the page cache (sendfile)
  otherFd = openSync(join(dir, 'other'), 'r');
});
after(() => { closeSync(otherFd); rmSync(dir, { recursive: true, force: true }); });

/** A fresh copy of `content` (in the page cache, just written), opened for reading: the file a test truncates. */
function freshFile(content: Buffer): { path: string; fd: number } {
  const path = join(dir, `f${serial++}`);
  writeFileSync(path, content);
  return { path, fd: openSync(path, 'r') };
}

/** How `got` differs from `content` (the bytes sent from position 0): the first differing byte, and how many differ
 * and how many of those are zeros. */
function compare(got: Buffer, content: Buffer): { first: number; differ: number; zeros: number } {
  let first = -1, differ = 0, zeros = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] === content[i]) continue;
    if (first < 0) first = i;
    differ++;
    if (got[i] === 0) zeros++;
  }
  return { first, differ, zeros };
}

/** The connection's sendFile outcome: 'resolved' or the rejection's code, and its message. */
interface Outcome { v: string; message: string }
function outcome(p: Promise<void>, out: Outcome): void {
  p.then(() => { out.v = 'resolved'; }, (e: { code?: string; message?: string }) => { out.message = e.message ?? ''; out.v = e.code ?? String(e); });
}

/** The position MP_ERR_SHORT_FILE's message names (where a read found the file's end), checking the region's end. */
function endFound(o: Outcome, regionEnd: number): number {
  const m = /^sendFile: the file ends before the region asked for: no byte at position (\d+) \(the region ends at (\d+)\)$/.exec(o.message);
  assert.ok(m, `the message says where the file ended: ${JSON.stringify(o.message)}`);
  assert.equal(Number(m[2]), regionEnd, 'the message names the region\'s end');
  return Number(m[1]);
}

for (const variant of VARIANTS) {
  const server = (onConn: (ch: Channel, h: number) => void, limits: Partial<Limits> = {}): Promise<ChannelServer> =>
    startChannelServer(variant.backend, onConn, { ...variant.limits, ...limits });
  describe(`sendFile of a truncated file (${variant.name})`, { skip: skipFor(variant.backend) || variant.skip }, () => {
    it('truncated before the sendFile: MP_ERR_SHORT_FILE, the peer gets at most the bytes the file still has, none after them', async () => {
      // 10 bytes off the end: the region's pages are all still in the page cache, so the sendfile variant does take
      // sendfile(2), which returns what is left and then 0
      const T = SMALL - 10;
      const f = freshFile(smallContent);
      truncateSync(f.path, T);
      const first = { v: '', message: '' }, second = { v: '', message: '' };
      let n = 0, h0 = -1;
      const srv = await server((ch, h) => {
        if (n++ === 0) { h0 = h; ch.writeAscii(h, '<'); outcome(ch.sendFile(h, f.fd, 0, SMALL), first); ch.writeAscii(h, 'never'); }
        else outcome(ch.sendFile(h, f.fd, 0, T).then(() => ch.disconnect(h)), second);
      });
      try {
        const got = await receiveUntilClosed(await connectSocket(srv.listener.port), 30000);
        await waitFor(() => first.v !== '', 'the sendFile to settle');
        assert.equal(first.v, 'MP_ERR_SHORT_FILE');
        assert.equal(endFound(first, SMALL), T, 'the end found where the file now ends');
        assert.deepEqual(srv.errors.get(h0), ['MP_ERR_SHORT_FILE'], 'an error event fails the connection');
        const expect = Buffer.concat([Buffer.from('<'), smallContent.subarray(0, T)]);
        assert.ok(got.length <= expect.length, `no byte past the file's end (got ${got.length}, the file has ${T})`);
        assert.ok(got.equals(expect.subarray(0, got.length)), 'what arrived is the file\'s own bytes, in order; no padding');
        if (variant.stat !== '') assert.equal(srv.ch.stats()[variant.stat as 'filesSpliced' | 'filesSentfile'], 1, `the path under test was taken (${variant.stat})`);
        // the same file, asked for the bytes it has: sent whole
        const whole = await receiveUntilClosed(await connectSocket(srv.listener.port), 30000);
        assert.ok(whole.equals(smallContent.subarray(0, T)), 'a sendFile within the new end is sent whole');
        await waitFor(() => second.v !== '', 'the second sendFile to settle');
        assert.equal(second.v, 'resolved');
      } finally { await srv.stop(); closeSync(f.fd); }
    });

    for (const where of ['behind', 'ahead'] as const) {
      const title = where === 'behind'
        ? 'truncated while being sent, below the bytes already handed to the kernel: MP_ERR_SHORT_FILE; ' + (variant.zeroCopy
          ? 'bytes past the new end already in flight may arrive as zeros (zero-copy cannot know), the others unchanged'
          : 'every byte that arrives is the file\'s as it was read (copies)')
        : 'truncated while being sent, ahead of what the kernel has: every byte up to the new end, then MP_ERR_SHORT_FILE';
      it(`${title}; another connection in the middle of its file gets it whole`, async (t: TestContext) => {
        const f = freshFile(bigContent);
        const first = { v: '', message: '' }, second = { v: '', message: '' };
        let n = 0, hBig = -1, hOther = -1;
        const srv = await server((ch, h) => {
          if (n++ === 0) { hBig = h; outcome(ch.sendFile(h, f.fd, 0, BIG), first); }
          else { hOther = h; outcome(ch.sendFile(h, otherFd, 0, OTHER).then(() => ch.disconnect(h)), second); }
        });
        try {
          // both peers stop reading: each send stalls with bytes on both sides of its connection and more in the channel
          const big = await connectSocket(srv.listener.port);
          big.pause();
          const other = await connectSocket(srv.listener.port);
          other.pause();
          const stalled = (s: net.Socket, h: number) => {
            if (h < 0) return false;
            const server = tcpQueues(srv.listener.port, s.localPort!), peer = tcpQueues(s.localPort!, srv.listener.port);
            return server !== undefined && server.tx > 0 && peer !== undefined && peer.rx > 0 && srv.ch.pendingBytes(h) > 0;
          };
          await waitFor(() => stalled(big, hBig) && stalled(other, hOther), 'both sends to stall (socket buffers full)');
          // bytes handed to the kernel so far (a splice pipe's and the read path's read-ahead are on top of these)
          const handed = BIG - srv.ch.pendingBytes(hBig);
          const T = where === 'behind' ? Math.floor(handed / 2) + 123 : handed + (8 << 20) + 123;
          assert.ok(T < BIG);
          truncateSync(f.path, T);
          const [got, gotOther] = await Promise.all([receiveUntilClosed(big, 60000), receiveUntilClosed(other, 60000)]);
          await waitFor(() => first.v !== '' && second.v !== '', 'both sendFiles to settle');
          assert.equal(first.v, 'MP_ERR_SHORT_FILE', 'the truncated file\'s send fails');
          // a read (splice, sendfile) at or past the new end found it: the first such, or one of several in flight at once
          const at = endFound(first, BIG);
          assert.ok(at >= T && at < BIG, `the end found at ${at}: at or past the new end (${T})`);
          if (where === 'ahead' && variant.zeroCopy) assert.equal(at, T, 'zero-copy reads on up to the new end');
          assert.deepEqual(srv.errors.get(hBig), ['MP_ERR_SHORT_FILE']);
          assert.ok(got.length < BIG, 'the connection ends before the length asked for: the peer can tell');
          const d = compare(got, bigContent);
          if (where === 'ahead') {
            // nothing past the new end was sent: the bytes up to it, unchanged (the read paths may stop at a chunk's start)
            assert.ok(got.length <= T, `no byte past the new end (got ${got.length}, the file has ${T})`);
            assert.equal(d.differ, 0, `every byte the file's (first difference at ${d.first})`);
            if (variant.zeroCopy) assert.equal(got.length, T, 'zero-copy sends every byte up to the new end');
          } else if (!variant.zeroCopy) {
            assert.equal(d.differ, 0, `copies: every byte as it was read (first difference at ${d.first})`);
          } else {
            assert.equal(compare(got.subarray(0, T), bigContent).differ, 0, 'the bytes below the new end are unchanged');
            assert.equal(d.zeros, d.differ, 'past the new end a byte is the old one or a zero, nothing else');
            t.diagnostic(`the new end at ${T}: ${got.length - T} bytes past it arrived, ${d.zeros} of them zeros instead of the file's old bytes (from ${d.first})`);
          }
          assert.ok(gotOther.equals(otherContent), 'the other connection gets its whole file, byte for byte');
          assert.equal(second.v, 'resolved');
          assert.equal(srv.errors.get(hOther), undefined, 'no error on the other connection');
          if (variant.stat !== '') assert.equal(srv.ch.stats()[variant.stat as 'filesSpliced' | 'filesSentfile'], 2, `the path under test was taken (${variant.stat})`);
        } finally { await srv.stop(); closeSync(f.fd); }
      });
    }
  });
}
