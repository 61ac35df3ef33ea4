// Regression test named after a bug the soak found (bench/soak.ts, the HTTP "half-close" scenario): a spliced
// sendFile to a peer that has half-closed (shutdown(SHUT_WR), then reads on) must still deliver every byte.
//
// The bug (io_uring, spliced sendFile only): each splice round is Poll(POLLOUT) -> SpliceOut. io_uring's poll always
// reports EPOLLRDHUP (with ERR/HUP/NVAL; IO_POLL_UNMASK), so once the peer's FIN is in, the poll completes at once
// with POLLRDHUP (8192) even while the socket's send buffer is full; SpliceOut then returns EAGAIN, the round moved
// nothing, and after SPLICE_IDLE_ROUNDS (64) such rounds in a row the sendFile fails with EIO: the connection is
// failed with the file partly sent. megapipe-http then closes it: a truncated response that ends in a FIN. Any
// client that half-closes after its request and reads slower than loopback fills the buffer is hit.
// The fix: a poll that comes back without POLLOUT switches the piece's later rounds to timed waits (IORING_OP_TIMEOUT
// hard-linked before SpliceOut, 1 ms doubling to 64 ms while nothing moves). sendfile rounds (a resident file,
// limits.sendfileMinBytes) wait the same way. The arena path (splicePipes: 0) and the portable backend are the controls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectSocket, prng, randomBytes, skipFor, startChannelServer, withTimeout } from './helpers.js';
import { startServer as startHttp } from '../apps/http/cli.js';

const FILE_BYTES = 8 << 20;   // more than loopback's socket buffers hold: the server's send buffer fills

let dir: string, fd: number, content: Buffer;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-splice-hc-'));
  content = randomBytes(prng(14), FILE_BYTES);
  writeFileSync(join(dir, 'big.bin'), content);
  fd = openSync(join(dir, 'big.bin'), 'r');
});
after(() => { closeSync(fd); rmSync(dir, { recursive: true, force: true }); });

/** Half-closes at once, stops reading for `pauseMs` (the server's send buffer fills), then reads to EOF. */
async function halfCloseAndRead(s: net.Socket, pauseMs: number): Promise<Buffer> {
  s.pause();
  s.end();
  const parts: Buffer[] = [];
  const done = withTimeout(new Promise<Buffer>((resolve, reject) => {
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  }), 30_000, 'read to EOF');
  await sleep(pauseMs);
  s.resume();
  return done;
}

const VARIANTS = [
  { name: 'uring, spliced', backend: 'uring', limits: { sendfileMinBytes: 0 } },
  // sendfile rounds (the file is in the page cache) wait with the same poll: after the FIN, timed waits too
  { name: 'uring, sendfile', backend: 'uring', limits: {} },
  { name: 'uring, read into the send arena', backend: 'uring', limits: { splicePipes: 0, sendfileMinBytes: 0 } },
  { name: 'portable', backend: 'portable', limits: {} },
] as const;

for (const v of VARIANTS) {
  describe(`sendFile to a peer that half-closed (${v.name})`, { skip: skipFor(v.backend) }, () => {
    it('delivers every byte, then closes', async () => {
      const results: string[] = [];
      const srv = await startChannelServer(v.backend, (ch, h) => {
        ch.sendFile(h, fd, 0, FILE_BYTES).then(() => { results.push('ok'); ch.disconnect(h); }, (e: Error & { code?: string }) => results.push(e.code ?? String(e)));
      }, v.limits);
      try {
        const s = await connectSocket(srv.listener.port);
        const got = await halfCloseAndRead(s, 500);
        assert.deepEqual(results, ['ok'], 'the sendFile succeeds');
        assert.equal(got.length, FILE_BYTES, 'every byte arrives');
        assert.ok(got.equals(content), 'byte for byte');
      } finally { await srv.stop(); }
    });
  });
}

describe('megapipe-http: a large static file to a client that half-closed after its request', { skip: skipFor('uring') }, () => {
  it('sends the whole response (Content-Length bytes), then closes', async () => {
    const server = await startHttp({ root: dir, port: 0, workers: 1 });
    try {
      const s = await connectSocket(server.port);
      s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      const got = await halfCloseAndRead(s, 500);
      const head = got.indexOf('\r\n\r\n');
      assert.match(got.subarray(0, head).toString('latin1'), /^HTTP\/1\.1 200 [^]*content-length: 8388608/i);
      assert.equal(got.length - head - 4, FILE_BYTES, 'the whole body before the FIN');
      assert.ok(got.subarray(head + 4).equals(content), 'byte for byte');
    } finally { await server.close(2000); }
  });
});
