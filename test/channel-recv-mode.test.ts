// How a connection's receives are made after its first, in each of the three modes of src/uring/receive.ts, seen in
// the requests the channel submits while a peer streams 4 MiB and the server only reads (every byte checked):
// - 'single' (one request per completion): at least one request per 16 KiB buffer filled — 256 or more;
// - 'capped' (a multishot receive that ends by itself after 16 buffers' worth, Linux 6.17): one request per 256–272 KiB
//   — the kernel really ends it at the cap (else: 1–2 requests) and it is armed again (else: the stream stalls);
// - 'multishot' (DEFER_TASKRUN rings: one request until cancelled): a few, plus one per -ENOBUFS re-arm.
// The default ring's mode must be the one its set-up and the kernel's probe (probe().recvCap) call for;
// MEGAPIPE_RECV=single forces the last mode; MEGAPIPE_RING_SETUP=0 forces a DEFER_TASKRUN ring where the kernel takes
// one. (What a paused connection still receives in each mode: channel-pause-bound.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createChannel, listen } from '../src/index.js';
import { native } from '../src/native.js';
import { recvMode } from '../src/uring/receive.js';
import { deferRingSkip, uringSkip, waitFor, withEnv } from './helpers.js';

const TOTAL = 4 * 1024 * 1024;
const BUF = 16 * 1024;   // the default receive buffer

interface Run { mode: string; deferTaskrun: boolean; requests: number; enobufs: number; received: number; bad: number }

/** A channel reading one connection until EOF, a node:net peer writing TOTAL bytes (position mod 251) then ending. */
async function stream(): Promise<Run> {
  const ch = createChannel({ backend: 'uring' });
  const listener = listen({ port: 0, host: '127.0.0.1' });
  const lh = ch.register(listener, 'L');
  let received = 0, bad = 0, eof = false, submittedAtAccept = -1, submittedAtEof = -1;
  ch.onEvent((ev) => {
    if (ev.type === 'accept' && ev.handle !== lh) { submittedAtAccept = ch.stats().submitted; ch.read(ev.handle); return; }
    if (ev.type !== 'read') return;
    if (ev.result === 0) { eof = true; submittedAtEof = ch.stats().submitted; ch.disconnect(ev.handle); return; }
    const b = ev.buffer!;
    for (let i = 0; i < ev.result; i++) if (b[ev.offset + i] !== (received + i) % 251) bad++;
    received += ev.result;
  });
  ch.accept(lh);
  const peer = net.connect(listener.port, '127.0.0.1');
  try {
    const chunk = Buffer.allocUnsafe(251 * 256);
    for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
    let sent = 0;
    const pump = (): void => {
      while (sent < TOTAL) {
        const n = Math.min(chunk.length, TOTAL - sent);
        // every chunk starts at a multiple of 251, so the pattern runs on across chunks
        const ok = peer.write(chunk.subarray(0, n));
        sent += n;
        if (!ok) return;
      }
      peer.end();
    };
    peer.on('connect', pump); peer.on('drain', pump);
    await waitFor(() => eof, 'the end of the stream', { ms: 30000 });
    const s = ch.stats();
    // the requests between the accept and the EOF: the receives (the server sends nothing)
    return { mode: ch.features.receive, deferTaskrun: ch.features.deferTaskrun, requests: submittedAtEof - submittedAtAccept, enobufs: s.enobufs, received, bad };
  } finally {
    peer.destroy();
    ch.close(); listener.close();
  }
}

function checkBytes(r: Run): void {
  assert.equal(r.received, TOTAL, 'every byte the peer sent');
  assert.equal(r.bad, 0, 'every byte in order');
}

/** [major, minor] of the running kernel. */
function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(native?.probe().kernel ?? '');
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

describe('receive modes: the requests a 4 MiB stream takes (uring)', { skip: uringSkip }, () => {
  it('the probe finds the multishot cap on a kernel that has it (6.18 and later)', { skip: kernelVersion()[0] * 100 + kernelVersion()[1] < 618 && 'kernel older than 6.18' }, () => {
    assert.equal(native!.probe().recvCap, true, `probe().recvCap on ${native!.probe().kernel}`);
  });

  it('the default ring: the mode its set-up and probe().recvCap call for, and that mode\'s requests', async () => {
    const r = await stream();
    checkBytes(r);
    assert.equal(r.mode, recvMode(r.deferTaskrun, native!.probe().recvCap === true, undefined));
    if (r.mode === 'capped') {
      // a first single-shot receive, then 4 MiB in armings of 256 KiB (+ at most one buffer): 15–17 of them
      assert.ok(r.requests >= 1 + Math.floor(TOTAL / (17 * BUF)) && r.requests <= 1 + Math.ceil(TOTAL / (16 * BUF)) + 1 + r.enobufs,
        `capped multishot: ${r.requests} receive requests for ${TOTAL} B (${r.enobufs} -ENOBUFS)`);
    } else if (r.mode === 'single') {
      assert.ok(r.requests >= TOTAL / BUF, `single-shot: ${r.requests} receive requests for ${TOTAL} B`);
    } else {
      assert.ok(r.requests <= 3 + r.enobufs, `multishot: ${r.requests} receive requests (${r.enobufs} -ENOBUFS)`);
    }
  });

  it('MEGAPIPE_RECV=single: one request per completion, whatever the kernel offers', async () => {
    const r = await withEnv({ MEGAPIPE_RECV: 'single' }, stream);
    checkBytes(r);
    assert.equal(r.mode, 'single');
    assert.ok(r.requests >= TOTAL / BUF, `single-shot: ${r.requests} receive requests for ${TOTAL} B`);
  });

  it('a DEFER_TASKRUN ring (forced): multishot, a few requests', { skip: deferRingSkip }, async () => {
    const r = await withEnv({ MEGAPIPE_RING_SETUP: '0' }, stream);
    checkBytes(r);
    assert.equal(r.mode, 'multishot');
    assert.ok(r.requests <= 3 + r.enobufs, `multishot: ${r.requests} receive requests (${r.enobufs} -ENOBUFS)`);
  });
});
