// sendFile and readFile: file bytes sent in order with writes (on io_uring both ways: IORING_OP_READ into the send
// memory, then sent; and spliced file -> pipe -> socket), ranges, positions beyond 4 GiB (a sparse file), many
// connections sharing a small send arena, files that end early or fail to read (the connection alone is failed),
// connections closed mid-file (the promise rejects, nothing leaks into other connections), graceful close after a
// file, and readFile. Splice only: the pipe pool running out, a peer that stops reading, a peer that resets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as net from 'node:net';
import { connectSocket, fdCount, prng, randomBytes, readAll, receiveUntilClosed, skipFor, startChannelServer as startServer, tcpQueues, waitFor, withTimeout } from './helpers.js';
import { createChannel, type Channel, type Limits } from '../src/index.js';
import { uringSkip } from './helpers.js';
import { native } from '../src/native.js';

/** IORING_OP_SPLICE (30) and IORING_OP_POLL_ADD (6) in the kernel's op list, or why not. */
const spliceSkip: string | false = uringSkip || (native?.probe().ops?.includes(30) && native.probe().ops?.includes(6) ? false : 'the kernel has no IORING_OP_SPLICE or IORING_OP_POLL_ADD');

/** sendfile(2) of resident regions needs cachestat (Linux 6.5) and, for lwsockets, IORING_OP_FIXED_FD_INSTALL (54, 6.8). */
const sendfileSkip: string | false = uringSkip || (native?.probe().ops?.includes(54) && native.fileCached(0, 0, 1) !== -38 ? false : 'the kernel has no cachestat or IORING_OP_FIXED_FD_INSTALL');

/** Each way a sendFile is carried out: io_uring reading into the arena, io_uring splicing, io_uring with sendfile(2)
 * (resident regions), the portable backend. */
const VARIANTS = [
  { name: 'uring, read into the send arena', backend: 'uring', limits: { splicePipes: 0, sendfileMinBytes: 0 }, skip: false },
  { name: 'uring, spliced', backend: 'uring', limits: { spliceMinBytes: 0, sendfileMinBytes: 0 }, skip: spliceSkip },
  { name: 'uring, sendfile', backend: 'uring', limits: { sendfileMinBytes: 1 }, skip: sendfileSkip },
  { name: 'portable', backend: 'portable', limits: {}, skip: false },
] as const;

const FILE_BYTES = 700_000;
const HIGH = 5 * 2 ** 30 + 12345;   // a file position above 4 GiB (needs the row's high position bits)

let dir: string;
let content: Buffer;
let fd: number, sparseFd: number;
const sparseTail = randomBytes(prng(99), 100_000);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-sendfile-'));
  content = randomBytes(prng(5), FILE_BYTES);
  writeFileSync(join(dir, 'data'), content);
  fd = openSync(join(dir, 'data'), 'r');
  const sp = join(dir, 'sparse');
  const w = openSync(sp, 'w');
  ftruncateSync(w, HIGH);
  writeSync(w, sparseTail, 0, sparseTail.length, HIGH);
  closeSync(w);
  sparseFd = openSync(sp, 'r');
});

after(() => {
  closeSync(fd);
  closeSync(sparseFd);
  rmSync(dir, { recursive: true, force: true });
});

const text = (s: string) => Buffer.from(s, 'latin1');


/** What `s` receives, taken in order: `take(n)` the next n bytes (the socket stays open), `end()` the rest until EOF. */
function collect(s: net.Socket): { take(n: number, what: string): Promise<Buffer>; end(ms: number): Promise<Buffer> } {
  let buf = Buffer.alloc(0), ended = false;
  s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); });
  s.once('end', () => { ended = true; });
  return {
    async take(n, what) {
      await waitFor(() => buf.length >= n || ended, what);
      assert.ok(buf.length >= n, `${what}: the connection ended after ${buf.length} of ${n} bytes`);
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    },
    async end(ms) {
      await waitFor(() => ended, 'the EOF', { ms });
      return buf;
    },
  };
}

for (const variant of VARIANTS) {
  const { backend } = variant;
  const server = (onConn: (ch: Channel, h: number) => void, limits: Partial<Limits> = {}) => startServer(backend, onConn, { ...variant.limits, ...limits });
  describe(`sendFile and readFile (${variant.name})`, { skip: skipFor(backend) || variant.skip }, () => {
    it('sends a file between writes, in order, byte for byte; several ranges on several connections at once', async () => {
      const settled: string[] = [];
      const ranges = [[0, FILE_BYTES], [1, 65_535], [65_536, 65_536], [123_457, 400_000], [FILE_BYTES - 1, 1], [0, 0]] as const;
      const srv = await server((ch, h) => {
        const [pos, len] = ranges[h % ranges.length]!;
        ch.writeAscii(h, `head ${pos} ${len}|`);
        const p = ch.sendFile(h, fd, pos, len);
        ch.write(h, text('|middle|'));
        const q = ch.sendFile(h, fd, 0, 1000);   // a second file behind the write
        ch.writeAscii(h, '|tail');
        Promise.all([p, q]).then(() => { settled.push('ok'); ch.disconnect(h); }, (e: Error) => settled.push(String(e)));
      });
      try {
        const replies = await Promise.all(Array.from({ length: 12 }, async () => {
          const s = await connectSocket(srv.listener.port);
          return readAll(s, 30000);
        }));
        for (const got of replies) {
          const m = /^head (\d+) (\d+)\|/.exec(got.subarray(0, 40).toString('latin1'));
          assert.ok(m, 'the head write comes first');
          const pos = Number(m[1]), len = Number(m[2]);
          const expect = Buffer.concat([text(m[0]), content.subarray(pos, pos + len), text('|middle|'), content.subarray(0, 1000), text('|tail')]);
          assert.equal(got.length, expect.length, `reply length for range ${pos}+${len}`);
          assert.ok(got.equals(expect), `reply bytes for range ${pos}+${len}`);
        }
        await waitFor(() => settled.length === 12, 'every sendFile to settle');
        assert.deepEqual(settled, Array(12).fill('ok'));
        assert.equal(srv.errors.size, 0);
        // the way the variant names was taken: one spliced file per connection at a time (a pipe each), so the first
        // file of each (10 non-empty ranges), or the second where the first was empty (2); the rest were read
        assert.equal(srv.ch.stats().filesSpliced, variant.name === 'uring, spliced' ? 12 : 0);
        // sendfile: every non-empty region (24 of 12 × 2) whose pages are in the page cache (a file just written is)
        if (variant.name === 'uring, sendfile') assert.ok(srv.ch.stats().filesSentfile > 0, 'regions sent with sendfile');
        else assert.equal(srv.ch.stats().filesSentfile, 0);
      } finally { await srv.stop(); }
    });

    it('reads at a position above 4 GiB (sparse file)', async () => {
      const srv = await server((ch, h) => {
        void ch.sendFile(h, sparseFd, HIGH - 10, 10 + sparseTail.length).then(() => ch.disconnect(h));
      });
      try {
        const got = await readAll(await connectSocket(srv.listener.port), 30000);
        assert.ok(got.equals(Buffer.concat([Buffer.alloc(10), sparseTail])), 'the bytes at 5 GiB');
      } finally { await srv.stop(); }
      const ch = createChannel({ backend, limits: variant.limits });
      try {
        const b = await ch.readFile(sparseFd, HIGH - 3, 20);
        assert.ok(b.equals(Buffer.concat([Buffer.alloc(3), sparseTail.subarray(0, 17)])));
      } finally { ch.close(); }
    });

    it('shares a small send arena among many connections sending large files (chunks wait for each other)', async () => {
      const n = 16;
      let done = 0;
      const srv = await server((ch, h) => {
        ch.writeAscii(h, 'A');
        void ch.sendFile(h, fd, 0, FILE_BYTES).then(() => { ch.writeAscii(h, 'Z'); ch.disconnect(h); done++; });
      }, { sendArenaBytes: 256 * 1024, sendChunkBytes: 16 * 1024, highWaterMark: 64 * 1024, lowWaterMark: 16 * 1024 });
      try {
        const expect = Buffer.concat([text('A'), content, text('Z')]);
        const replies = await Promise.all(Array.from({ length: n }, async () => readAll(await connectSocket(srv.listener.port), 60000)));
        for (const got of replies) assert.ok(got.equals(expect), 'every connection gets its whole file');
        await waitFor(() => done === n, 'all files sent');
      } finally { await srv.stop(); }
    });

    it('a file shorter than asked fails that connection only (MP_ERR_SHORT_FILE); the others are served', async () => {
      const outcomes = new Map<number, string>();   // by connection number (handles are reused)
      let first = -1, conns = 0;
      const srv = await server((ch, h) => {
        const k = conns++;
        if (k === 0) {
          first = h;
          ch.writeAscii(h, 'short:');
          ch.sendFile(h, fd, FILE_BYTES - 100, 200).then(() => outcomes.set(k, 'resolved'), (e: { code?: string }) => outcomes.set(k, e.code ?? '?'));
          ch.writeAscii(h, 'never');
        } else {
          ch.sendFile(h, fd, 0, 5000).then(() => { outcomes.set(k, 'resolved'); ch.disconnect(h); }, (e: { code?: string }) => outcomes.set(k, e.code ?? '?'));
        }
      });
      try {
        // the broken connection ends by EOF or by a reset: either way, every byte it got is checked
        const got1 = await receiveUntilClosed(await connectSocket(srv.listener.port), 30000);
        const got2 = await readAll(await connectSocket(srv.listener.port), 30000);
        assert.ok(got2.equals(content.subarray(0, 5000)), 'the other connection gets its bytes');
        // what could go out before the failure: the head, then the 100 bytes the file has; 'never' must not follow
        const before = Buffer.concat([text('short:'), content.subarray(FILE_BYTES - 100)]);
        assert.ok(got1.length <= before.length && got1.equals(before.subarray(0, got1.length)),
          `nothing written after the broken file is sent (got ${got1.length} B: ${JSON.stringify(got1.subarray(Math.max(0, got1.length - 12)).toString('latin1'))} at the end)`);
        await waitFor(() => outcomes.size === 2, 'both sendFiles to settle');
        assert.equal(outcomes.get(0), 'MP_ERR_SHORT_FILE');
        assert.equal(outcomes.get(1), 'resolved');
        assert.deepEqual(srv.errors.get(first), ['MP_ERR_SHORT_FILE'], 'an error event names the cause');
      } finally { await srv.stop(); }
    });

    it('a read error (bad fd) rejects with its errno name and fails the connection', async () => {
      const badFd = 999_999;   // above any open descriptor (the hard limit on open files is far lower)
      let outcome = '';
      const srv = await server((ch, h) => {
        ch.sendFile(h, badFd, 0, 10).then(() => { outcome = 'resolved'; }, (e: { code?: string }) => { outcome = e.code ?? '?'; });
      });
      try {
        await readAll(await connectSocket(srv.listener.port), 30000).catch(() => undefined);
        await waitFor(() => outcome !== '', 'the sendFile to settle');
        assert.equal(outcome, 'EBADF');
        await waitFor(() => srv.errors.size === 1, 'the error event');
      } finally { await srv.stop(); }
    });

    it('closing the connection mid-file rejects with MP_ERR_CLOSED; a graceful close sends the whole file first', async () => {
      let aborted = '';
      let graceful = '';
      let i = 0;
      const srv = await server((ch, h) => {
        if (i++ === 0) {
          // abort: the file does not fit the connection's budget, so some of it is still unread when it closes
          ch.sendFile(h, fd, 0, FILE_BYTES).then(() => { aborted = 'resolved'; }, (e: { code?: string }) => { aborted = e.code ?? '?'; });
          ch.disconnect(h, true);
        } else {
          ch.sendFile(h, fd, 0, FILE_BYTES).then(() => { graceful = 'resolved'; }, (e: { code?: string }) => { graceful = e.code ?? '?'; });
          ch.disconnect(h);   // graceful: queued bytes (the whole file) go first
        }
      });
      try {
        const s1: net.Socket = await connectSocket(srv.listener.port);
        await readAll(s1, 30000).catch(() => undefined);
        await waitFor(() => aborted !== '', 'the aborted sendFile to settle');
        assert.equal(aborted, 'MP_ERR_CLOSED');
        const got = await readAll(await connectSocket(srv.listener.port), 30000);
        assert.ok(got.equals(content), 'graceful close after the whole file');
        await waitFor(() => graceful !== '', 'the graceful sendFile to settle');
        assert.equal(graceful, 'resolved');
      } finally { await srv.stop(); }
    });

    it('readFile: whole file, a range, past the end (shorter), empty; bad arguments are named', async () => {
      const ch = createChannel({ backend, limits: { ...variant.limits, sendArenaBytes: 128 * 1024, sendChunkBytes: 16 * 1024 } });
      try {
        assert.ok((await ch.readFile(fd, 0, FILE_BYTES)).equals(content), 'the whole file (more than the arena holds)');
        assert.ok((await ch.readFile(fd, 1234, 70_000)).equals(content.subarray(1234, 71_234)));
        const tail = await ch.readFile(fd, FILE_BYTES - 10, 1000);
        assert.ok(tail.equals(content.subarray(FILE_BYTES - 10)), 'shorter at the end of the file');
        assert.equal((await ch.readFile(fd, FILE_BYTES + 5, 10)).length, 0);
        assert.equal((await ch.readFile(fd, 0, 0)).length, 0);
        const many = await withTimeout(Promise.all(Array.from({ length: 20 }, (_, k) => ch.readFile(fd, k * 1000, 200_000))), 30000, 'concurrent readFiles');
        many.forEach((b, k) => assert.ok(b.equals(content.subarray(k * 1000, k * 1000 + 200_000)), `concurrent read ${k}`));
        await assert.rejects(ch.readFile(-1, 0, 1), /fd must be/);
        await assert.rejects(ch.readFile(fd, -1, 1), /position must be/);
        await assert.rejects(ch.readFile(fd, 0, 2 ** 31), /length must be/);
        await assert.rejects(ch.readFile(fd, 0, 1.5), /length must be/);
        await assert.rejects(ch.sendFile(12345, fd, 0, 1), (e: { code?: string }) => e.code === 'MP_ERR_BAD_HANDLE');
      } finally { ch.close(); }
      await assert.rejects(ch.readFile(fd, 0, 1), (e: { code?: string }) => e.code === 'MP_ERR_CLOSED');
    });
  });
}

describe('spliced sendFile (uring)', { skip: spliceSkip }, () => {
  const SPLICE_ALL = { spliceMinBytes: 0, sendfileMinBytes: 0 };

  it('uses at most limits.splicePipes pipes: connections beyond them read into the arena, every byte arrives', async () => {
    const done: string[] = [];
    const srv = await startServer('uring', (ch, h) => {
      ch.writeAscii(h, '<');
      ch.sendFile(h, fd, 0, FILE_BYTES).then(() => { ch.writeAscii(h, '>'); ch.disconnect(h); done.push('ok'); }, (e: Error) => done.push(String(e)));
    }, { ...SPLICE_ALL, splicePipes: 2 });
    try {
      // connect all before reading any: the first two files wait in their pipes while the others are started
      const socks = await Promise.all(Array.from({ length: 6 }, () => connectSocket(srv.listener.port)));
      await waitFor(() => srv.ch.stats().filesSpliced + srv.ch.stats().spliceNoPipe === 6, 'every sendFile to start');
      const replies = await Promise.all(socks.map((s) => readAll(s, 30000)));
      const expect = Buffer.concat([text('<'), content, text('>')]);
      for (const got of replies) assert.ok(got.equals(expect), 'the whole file between the writes');
      await waitFor(() => done.length === 6, 'every sendFile to settle');
      assert.deepEqual(done, Array(6).fill('ok'));
      const st = srv.ch.stats();
      assert.equal(st.filesSpliced, 2);
      assert.equal(st.spliceNoPipe, 4);
    } finally { await srv.stop(); }
  });

  it('a peer that stops reading holds only its own pipe; an abort cancels the waiting splice and frees everything', async () => {
    const fdsBefore = fdCount();
    const big = join(dir, 'big-sparse');
    const w = openSync(big, 'w');
    ftruncateSync(w, 64 * 1024 * 1024);   // more than the loopback socket buffers take
    closeSync(w);
    const bigFd = openSync(big, 'r');
    const outcomes: string[] = [];
    let stalled = -1;
    const srv = await startServer('uring', (ch, h) => {
      if (stalled < 0) {
        stalled = h;
        ch.sendFile(h, bigFd, 0, 64 * 1024 * 1024).then(() => outcomes.push('resolved'), (e: { code?: string }) => outcomes.push(e.code ?? '?'));
      } else {
        void ch.sendFile(h, fd, 0, FILE_BYTES).then(() => ch.disconnect(h));
      }
    }, { ...SPLICE_ALL, splicePipes: 2 });   // the stalled one must leave the other pipe to the next connection
    try {
      const idle = await connectSocket(srv.listener.port);   // never reads
      idle.pause();
      // the peer has stopped the splice: the kernel holds bytes on both sides of the connection (the server's send queue,
      // the idle peer's receive queue) that nobody takes, while the rest of the file is still queued in the channel
      await waitFor(() => {
        if (stalled < 0) return false;
        const server = tcpQueues(srv.listener.port, idle.localPort!), peer = tcpQueues(idle.localPort!, srv.listener.port);
        return server !== undefined && server.tx > 0 && peer !== undefined && peer.rx > 0 && srv.ch.pendingBytes(stalled) > 0;
      }, 'the idle peer to stop the splice (socket buffers full)');
      // meanwhile another connection is served through the pool
      const got = await readAll(await connectSocket(srv.listener.port), 30000);
      assert.ok(got.equals(content), 'the other connection gets its file');
      srv.ch.disconnect(stalled, true);
      await waitFor(() => outcomes.length === 1, 'the stalled sendFile to settle');
      assert.equal(outcomes[0], 'MP_ERR_CLOSED');
      await waitFor(() => srv.closed.has(stalled), 'the aborted connection to be released (its poll cancelled)');
      assert.equal(srv.ch.stats().filesSpliced, 2, 'both spliced: the stalled connection held one pipe of the two');
      assert.equal(srv.ch.stats().spliceNoPipe, 0);
      idle.destroy();
    } finally {
      await srv.stop();
      closeSync(bigFd);
    }
    assert.equal(fdCount(), fdsBefore, 'no pipe left open');
  });

  it('a peer that resets mid-file fails its own connection; the next one is served', async () => {
    const outcomes: string[] = [];
    let n = 0;
    // the reset connection's file: 256 MiB of the sparse file's zeros, more than loopback buffers between the two
    // sockets (tcp_wmem's and tcp_rmem's maxima: 4 + 32 MiB by default), so the reset always meets it mid-file (the
    // 700 kB file may be in the client's receive queue whole before the client reads its first bytes)
    const srv = await startServer('uring', (ch, h) => {
      const k = n++;
      const [file, len] = k === 0 ? [sparseFd, 256 * 2 ** 20] : [fd, FILE_BYTES];
      ch.sendFile(h, file, 0, len).then(() => { outcomes[k] = 'resolved'; ch.disconnect(h); }, (e: { code?: string }) => { outcomes[k] = e.code ?? '?'; });
    }, { ...SPLICE_ALL, splicePipeBytes: 64 * 1024 });
    try {
      const s = await connectSocket(srv.listener.port);
      await new Promise<void>((resolve) => s.once('data', () => { s.resetAndDestroy(); resolve(); }));
      await waitFor(() => outcomes[0] !== undefined, 'the reset connection\'s sendFile to settle');
      assert.match(outcomes[0]!, /^(ECONNRESET|EPIPE|MP_ERR_CLOSED)$/);
      const got = await readAll(await connectSocket(srv.listener.port), 30000);
      assert.ok(got.equals(content), 'the next connection gets its file');
      await waitFor(() => outcomes[1] !== undefined, 'the second sendFile to settle');
      assert.equal(outcomes[1], 'resolved');
    } finally { await srv.stop(); }
  });
});

describe('sendFile with sendfile(2) (uring: regions in the page cache)', { skip: sendfileSkip }, () => {
  const SENDFILE = { sendfileMinBytes: 1 };

  it('a peer that stops reading stalls only its own connection; an abort cancels the waiting poll and closes the fd installed for it', async () => {
    const fdsBefore = fdCount();
    const big = join(dir, 'big-resident');
    writeFileSync(big, Buffer.alloc(48 * 1024 * 1024, 0x5a));   // just written: in the page cache; more than the socket buffers take
    const bigFd = openSync(big, 'r');
    const outcomes: string[] = [];
    let stalled = -1;
    const srv = await startServer('uring', (ch, h) => {
      if (stalled < 0) {
        stalled = h;
        ch.sendFile(h, bigFd, 0, 48 * 1024 * 1024).then(() => outcomes.push('resolved'), (e: { code?: string }) => outcomes.push(e.code ?? '?'));
      } else {
        void ch.sendFile(h, fd, 0, FILE_BYTES).then(() => ch.disconnect(h));
      }
    }, SENDFILE);
    try {
      const idle = await connectSocket(srv.listener.port);   // never reads
      idle.pause();
      await waitFor(() => {
        if (stalled < 0) return false;
        const server = tcpQueues(srv.listener.port, idle.localPort!), peer = tcpQueues(idle.localPort!, srv.listener.port);
        return server !== undefined && server.tx > 0 && peer !== undefined && peer.rx > 0 && srv.ch.pendingBytes(stalled) > 0;
      }, 'the idle peer to stop the sendfile (socket buffers full)');
      const got = await readAll(await connectSocket(srv.listener.port), 30000);
      assert.ok(got.equals(content), 'the other connection gets its file meanwhile');
      assert.equal(srv.ch.stats().filesSentfile, 2, 'both sent with sendfile');
      assert.equal(srv.ch.stats().filesSpliced, 0);
      srv.ch.disconnect(stalled, true);
      await waitFor(() => outcomes.length === 1, 'the stalled sendFile to settle');
      assert.equal(outcomes[0], 'MP_ERR_CLOSED');
      await waitFor(() => srv.closed.has(stalled), 'the aborted connection to be released (its poll cancelled)');
      idle.destroy();
    } finally {
      await srv.stop();
      closeSync(bigFd);
      rmSync(big, { force: true });
    }
    assert.equal(fdCount(), fdsBefore, 'no installed socket fd left open');
  });

  it('a peer that resets mid-file fails its own connection; the next one is served', async () => {
    const outcomes: string[] = [];
    let n = 0;
    const srv = await startServer('uring', (ch, h) => {
      const k = n++;
      ch.sendFile(h, fd, 0, FILE_BYTES).then(() => { outcomes[k] = 'resolved'; ch.disconnect(h); }, (e: { code?: string }) => { outcomes[k] = e.code ?? '?'; });
    }, SENDFILE);
    try {
      const s = await connectSocket(srv.listener.port);
      await new Promise<void>((resolve) => s.once('data', () => { s.resetAndDestroy(); resolve(); }));
      await waitFor(() => outcomes[0] !== undefined, 'the reset connection\'s sendFile to settle');
      assert.match(outcomes[0]!, /^(ECONNRESET|EPIPE|MP_ERR_CLOSED|resolved)$/);
      const got = await readAll(await connectSocket(srv.listener.port), 30000);
      assert.ok(got.equals(content), 'the next connection gets its file');
      await waitFor(() => outcomes[1] !== undefined, 'the second sendFile to settle');
      assert.equal(outcomes[1], 'resolved');
      assert.ok(srv.ch.stats().filesSentfile >= 1);
    } finally { await srv.stop(); }
  });

  it('an lwsocket\'s fd installed for sendfile is closed once the connection has no sendfile left: the fd count is back to its baseline while the connection stays open; later sendFiles, back to back, install one again', async () => {
    let conn: { ch: Channel; h: number } | undefined;
    const srv = await startServer('uring', (ch, h) => { conn = { ch, h }; }, SENDFILE);
    try {
      const s = await connectSocket(srv.listener.port);
      const rx = collect(s);
      await waitFor(() => conn !== undefined, 'the accept');
      const { ch, h } = conn!;
      assert.ok(ch.isLwsocket(h), 'an lwsocket: its sendfile needs a regular fd installed for it');
      const baseline = fdCount();
      await withTimeout(ch.sendFile(h, fd, 0, FILE_BYTES), 30000, 'the first sendFile');
      assert.ok((await rx.take(FILE_BYTES, 'the first file')).equals(content), 'the first file, byte for byte');
      assert.equal(ch.stats().filesSentfile, 1);
      await waitFor(() => fdCount() === baseline, 'the installed fd to be closed (the connection open, nothing queued)');
      assert.ok(ch.isOpen(h), 'the connection stays open');
      // again: two queued at once with a write between them, a third made when the second resolves
      const a = ch.sendFile(h, fd, 0, FILE_BYTES);
      ch.writeAscii(h, '|');
      const b = ch.sendFile(h, fd, 1000, 300_000).then(() => ch.sendFile(h, fd, 5, 200_000));
      await withTimeout(Promise.all([a, b]), 30000, 'the later sendFiles');
      const expect = Buffer.concat([content, text('|'), content.subarray(1000, 301_000), content.subarray(5, 200_005)]);
      assert.ok((await rx.take(expect.length, 'the later files')).equals(expect), 'every byte of the later files, in order');
      assert.equal(ch.stats().filesSentfile, 4, 'all with sendfile');
      await waitFor(() => fdCount() === baseline, 'the installed fd to be closed again');
      assert.ok(ch.isOpen(h));
      assert.equal(srv.errors.size, 0);
      ch.disconnect(h);
      assert.equal((await rx.end(30000)).length, 0, 'nothing more before the EOF');
    } finally { await srv.stop(); }
  });

  it('a region not in the page cache (never read: a sparse file\'s hole) is spliced instead, so the thread never waits for the disk', async () => {
    const sp = join(dir, 'cold-sparse');
    const w = openSync(sp, 'w');
    ftruncateSync(w, 1024 * 1024);
    closeSync(w);
    const coldFd = openSync(sp, 'r');
    const srv = await startServer('uring', (ch, h) => { void ch.sendFile(h, coldFd, 0, 1024 * 1024).then(() => ch.disconnect(h)); }, { ...SENDFILE, spliceMinBytes: 0 });
    try {
      assert.equal(native!.fileCached(coldFd, 0, 1024 * 1024), 0, 'not resident before');
      const got = await readAll(await connectSocket(srv.listener.port), 30000);
      assert.ok(got.equals(Buffer.alloc(1024 * 1024)), 'the zeros of the hole');
      assert.equal(srv.ch.stats().filesSentfile, 0);
      assert.equal(srv.ch.stats().filesSpliced, 1);
    } finally {
      await srv.stop();
      closeSync(coldFd);
    }
  });
});
