// A single-shot receive re-armed after one that left the socket empty asks the kernel to wait for bytes before trying
// (MP_OP_RECV's c & 2 → IORING_RECVSEND_POLL_FIRST, src/uring/receive.ts): a request-response peer's next request is
// never there yet, so a try would find nothing and then wait anyway. After a receive that left bytes behind (the
// kernel's IORING_CQE_F_SOCK_NONEMPTY) the next one tries at once. Seen in the receive rows the channel stages for
// one connection (single-shot receives forced: MEGAPIPE_RECV=single) while a peer sends small messages one at a time,
// then 256 KiB in one write (more than a 16 KiB receive buffer: bytes are left behind); every byte checked.
// And the kernel's one answer that only such a receive gets: -EAGAIN, when it cannot arm the wait (its poll entry not
// allocated, under memory pressure; without the flag the receive would block in a kernel worker instead). Not an
// error: the receive is armed again, trying at once, and the connection reads on. Forced through the real completion
// path: the receive's row replaced by a NOP that completes with -EAGAIN (IORING_NOP_INJECT_RESULT, Linux 6.10+).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createChannel, listen } from '../src/index.js';
import { Op, Tag } from '../src/uring/abi.js';
import type { UringChannel } from '../src/uring/channel.js';
import { kernelAtLeast, uringSkip, waitFor, withEnv } from './helpers.js';

const BURST = 256 * 1024;

describe('single-shot receives wait for bytes after draining the socket (uring)', { skip: uringSkip }, () => {
  it('POLL_FIRST after a small message, a plain try after a receive that left bytes, every byte in order', () => withEnv({ MEGAPIPE_RECV: 'single' }, async () => {
    const ch = createChannel({ backend: 'uring' }) as unknown as UringChannel;
    assert.equal(ch.features.receive, 'single');
    const listener = listen({ port: 0, host: '127.0.0.1' });
    const lh = ch.register(listener, 'L');
    let conn = -1, received = 0, bad = 0;
    // the receive rows staged for the connection, in order: their c operand (1: try first; 3: poll first)
    const rows: number[] = [];
    const stage = ch.stage.bind(ch);
    ch.stage = (op, h, fd, flags, a, b, c, tag) => {
      if (op === Op.Recv && tag === Tag.Recv && h === conn) rows.push(c);
      stage(op, h, fd, flags, a, b, c, tag);
    };
    ch.onEvent((ev) => {
      if (ev.type === 'accept' && ev.handle !== lh) { conn = ev.handle; ch.read(ev.handle); return; }
      if (ev.type !== 'read' || ev.handle !== conn || ev.result <= 0) return;
      for (let i = 0; i < ev.result; i++) if (ev.buffer![ev.offset + i] !== (received + i) % 251) bad++;
      received += ev.result;
    });
    ch.accept(lh, { count: 1 });
    const peer = net.connect(listener.port, '127.0.0.1');
    peer.setNoDelay(true);
    try {
      await new Promise<void>((resolve, reject) => { peer.once('connect', resolve); peer.once('error', reject); });
      await waitFor(() => conn >= 0 && rows.length === 1, 'the first receive armed');
      const pattern = (from: number, n: number): Buffer => { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = (from + i) % 251; return b; };
      // small messages, each waited for: every receive takes all there is
      let sent = 0;
      for (let m = 0; m < 8; m++) {
        peer.write(pattern(sent, 100)); sent += 100;
        await waitFor(() => received === sent && rows.length === m + 2, `message ${m} received and the receive re-armed`);
      }
      assert.equal(rows[0], 1, 'the first receive of a connection tries at once (bytes may be there already)');
      assert.deepEqual(rows.slice(1), Array(8).fill(3), 'each receive after a message that emptied the socket waits for bytes first');
      // one write of 256 KiB: a 16 KiB receive leaves bytes in the socket, so the next receive tries at once
      const before = rows.length;
      peer.write(pattern(sent, BURST)); sent += BURST;
      await waitFor(() => received === sent, 'the burst received', { ms: 20000 });
      const burstRows = rows.slice(before);
      assert.ok(burstRows.length >= BURST / (16 * 1024), `${burstRows.length} receives for ${BURST} B`);
      assert.ok(burstRows.includes(1), `some receive after one that left bytes behind tries at once: ${burstRows.join(',')}`);
      assert.equal(burstRows[burstRows.length - 1], 3, 'the receive after the last bytes waits for bytes first');
      assert.equal(bad, 0, 'every byte in order');
    } finally {
      peer.destroy();
      ch.close(); listener.close();
    }
  }));

  it('a receive that ends with -EAGAIN is armed again, trying at once: no error, every byte after it', { skip: !kernelAtLeast(6, 10) && 'no NOP result injection before Linux 6.10' }, () => withEnv({ MEGAPIPE_RECV: 'single' }, async () => {
    const ch = createChannel({ backend: 'uring' }) as unknown as UringChannel;
    const listener = listen({ port: 0, host: '127.0.0.1' });
    const lh = ch.register(listener, 'L');
    let conn = -1, received = 0, bad = 0, injected = 0;
    const rows: number[] = [], errors: number[] = [];
    const stage = ch.stage.bind(ch);
    ch.stage = (op, h, fd, flags, a, b, c, tag) => {
      if (op === Op.Recv && tag === Tag.Recv && h === conn) {
        rows.push(c);
        // the first receive that waits for bytes: the kernel answers -EAGAIN for it (MP_OP_NOP, a = 1: b is the result)
        if (c === 3 && injected === 0) { injected++; stage(Op.Nop, h, 0, 0, 1, -11, 0, tag); return; }
      }
      stage(op, h, fd, flags, a, b, c, tag);
    };
    ch.onEvent((ev) => {
      if (ev.type === 'accept' && ev.handle !== lh) { conn = ev.handle; ch.read(ev.handle); return; }
      if (ev.type === 'error' && ev.handle === conn) { errors.push(ev.result); return; }
      if (ev.type !== 'read' || ev.handle !== conn || ev.result <= 0) return;
      for (let i = 0; i < ev.result; i++) if (ev.buffer![ev.offset + i] !== (received + i) % 251) bad++;
      received += ev.result;
    });
    ch.accept(lh, { count: 1 });
    const peer = net.connect(listener.port, '127.0.0.1');
    peer.setNoDelay(true);
    try {
      await new Promise<void>((resolve, reject) => { peer.once('connect', resolve); peer.once('error', reject); });
      const pattern = (from: number, n: number): Buffer => { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = (from + i) % 251; return b; };
      let sent = 0;
      for (let m = 0; m < 4; m++) {
        peer.write(pattern(sent, 100)); sent += 100;
        await waitFor(() => received === sent || errors.length > 0, `message ${m} received`);
        assert.deepEqual(errors, [], 'no error event for the -EAGAIN receive');
      }
      assert.equal(injected, 1, 'the -EAGAIN was injected once');
      // first receive 1; after the first message 3 (answered -EAGAIN), then 1 (tries at once), then 3 again after each
      assert.deepEqual(rows.slice(0, 3), [1, 3, 1], `the receive rows: ${rows.join(',')}`);
      assert.equal(bad, 0, 'every byte in order');
    } finally {
      peer.destroy();
      ch.close(); listener.close();
    }
  }));
});
