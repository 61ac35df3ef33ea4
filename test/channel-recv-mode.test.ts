// How a connection's receives are made after its first, in each mode of src/uring/receive.ts, seen in the requests
// the channel submits while a peer streams 4 MiB and the server only reads (every byte checked):
// - 'single' (one request per completion): at least one request per 16 KiB buffer filled — 256 or more;
// - 'capped' (MEGAPIPE_RECV=capped where the kernel has the cap, Linux 6.17: a multishot receive that ends by itself
//   after 256 KiB): one request per 256–272 KiB — the kernel really ends it at the cap (else: 1–2 requests) and it is
//   armed again (else: the stream stalls);
// - 'multishot' (DEFER_TASKRUN rings: one request until cancelled): a few, plus one per -ENOBUFS re-arm.
// The default ring's mode must be the one its set-up calls for; MEGAPIPE_RECV=single forces single-shot receives;
// MEGAPIPE_RING_SETUP=0 forces a DEFER_TASKRUN ring where the kernel takes one.
// And what a connection trickling 1-byte segments takes while JavaScript is busy for 250 ms (a busy loop: no system
// call, so nothing enters the kernel for this thread): on the default ring at most a few receive buffers — with capped
// receives as the default (fc110dc) it took 66 of a 64-buffer pool and ran it dry, since each completion takes a whole
// buffer however few bytes it carries. (What a paused connection still receives in each mode: channel-pause-bound.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createChannel, listen } from '../src/index.js';
import { native } from '../src/native.js';
import { recvMode } from '../src/uring/receive.js';
import { Worker } from 'node:worker_threads';
import { cappedRecvSkip, defaultRecvMode, deferRingSkip, kernelAtLeast, uringSkip, waitFor, withEnv } from './helpers.js';

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
  // one connection: count 1 (a keep-accepting listener may cancel and re-arm its accept on the first connection,
  // which would fall inside the window counted below)
  ch.accept(lh, { count: 1 });
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

function checkRequests(r: Run): void {
  if (r.mode === 'capped') {
    // a first single-shot receive, then 4 MiB in armings of 256 KiB (+ at most one buffer): 15–17 of them
    assert.ok(r.requests >= 1 + Math.floor(TOTAL / (17 * BUF)) && r.requests <= 1 + Math.ceil(TOTAL / (16 * BUF)) + 1 + r.enobufs,
      `capped multishot: ${r.requests} receive requests for ${TOTAL} B (${r.enobufs} -ENOBUFS)`);
  } else if (r.mode === 'single') {
    assert.ok(r.requests >= TOTAL / BUF, `single-shot: ${r.requests} receive requests for ${TOTAL} B`);
  } else {
    assert.ok(r.requests <= 3 + r.enobufs, `multishot: ${r.requests} receive requests (${r.enobufs} -ENOBUFS)`);
  }
}

function checkBytes(r: Run): void {
  assert.equal(r.received, TOTAL, 'every byte the peer sent');
  assert.equal(r.bad, 0, 'every byte in order');
}

describe('receive modes: the requests a 4 MiB stream takes (uring)', { skip: uringSkip }, () => {
  it('the probe finds the multishot cap on a kernel that has it (6.17 and later)', { skip: !kernelAtLeast(6, 17) && 'kernel older than 6.17' }, () => {
    assert.equal(native!.probe().recvCap, true, `probe().recvCap on ${native!.probe().kernel}`);
  });

  it('the default ring: the mode its set-up calls for, and that mode\'s requests', async () => {
    const r = await stream();
    checkBytes(r);
    assert.equal(r.mode, recvMode(r.deferTaskrun, native!.probe().recvCap === true, process.env['MEGAPIPE_RECV']));
    checkRequests(r);
  });

  const forced = [
    ['MEGAPIPE_RECV=capped where the kernel has the cap: an arming per 256 KiB', { MEGAPIPE_RECV: 'capped' }, 'capped', cappedRecvSkip],
    ['MEGAPIPE_RECV=single: one request per completion, whatever the kernel offers', { MEGAPIPE_RECV: 'single' }, 'single', false],
    ['a DEFER_TASKRUN ring (forced): multishot, a few requests', { MEGAPIPE_RING_SETUP: '0' }, 'multishot', deferRingSkip],
  ] as const;
  for (const [what, env, mode, skip] of forced) {
    it(what, { skip }, async () => {
      const r = await withEnv(env, stream);
      checkBytes(r);
      assert.equal(r.mode, mode);
      checkRequests(r);
    });
  }
});

/** Read events of one connection trickling 1-byte segments that the ring held when this thread's 250 ms busy loop
 * ended (delivered before the channel's next flush), on a channel of 64 receive buffers. */
async function trickle(): Promise<{ mode: string; postedWhileBusy: number; enobufs: number; bad: number }> {
  const ch = createChannel({ backend: 'uring', limits: { recvBuffers: 64 } });
  const listener = listen({ port: 0, host: '127.0.0.1' });
  const lh = ch.register(listener, 'L');
  let reads = 0, received = 0, bad = 0, busyDone = false, flushesAtBusyEnd = -1, postedWhileBusy = 0;
  let result: { mode: string; postedWhileBusy: number; enobufs: number; bad: number } | undefined;
  ch.onEvent((ev) => {
    if (ev.type === 'accept' && ev.handle !== lh) { ch.read(ev.handle); return; }
    if (ev.type !== 'read' || ev.result <= 0) return;
    for (let i = 0; i < ev.result; i++) if (ev.buffer![ev.offset + i] !== 0x78) bad++;
    reads++; received += ev.result;
    // completions the ring held when the busy loop ended: delivered before the channel's next flush (which is what
    // re-arms a single-shot receive)
    if (busyDone && ch.stats().flushes === flushesAtBusyEnd) postedWhileBusy++;
    if (reads === 3 && !busyDone) {   // past the first receive: the mode's later receive is armed
      const t = Date.now();
      while (Date.now() - t < 250) { /* JavaScript busy: no system call */ }
      busyDone = true;
      const s0 = ch.stats();
      flushesAtBusyEnd = s0.flushes;
      setImmediate(() => { result = { mode: ch.features.receive, postedWhileBusy, enobufs: ch.stats().enobufs - s0.enobufs, bad }; });
    }
  });
  ch.accept(lh, { count: 1 });
  const w = new Worker(`const net = require('node:net'); const s = net.connect(${listener.port}, '127.0.0.1'); s.setNoDelay(true);
    const t = Date.now(); const go = () => { if (Date.now() - t > 2000) return s.destroy(); s.write('x'); setImmediate(go); };
    s.on('connect', go); s.on('error', () => {});`, { eval: true });
  try {
    await waitFor(() => result !== undefined, 'the busy handler and the read events after it', { ms: 10000 });
    return result!;
  } finally {
    await w.terminate();
    ch.close(); listener.close();
  }
}

describe('a peer trickling 1-byte segments while JavaScript is busy (uring)', { skip: uringSkip }, () => {
  // single-shot receives: the one armed receive holds the bytes (a second may complete inline as the batch re-arms);
  // capped receives took 63 of the 64 buffers here (fc110dc, where they were the default). On a DEFER_TASKRUN ring
  // ('multishot') nothing is posted while the thread is busy; its next enter then runs the queued receive work, up to
  // the kernel's retry limit per run — not judged here.
  const check = (r: { mode: string; postedWhileBusy: number; enobufs: number; bad: number }): void => {
    assert.equal(r.bad, 0, 'every byte the peer sent');
    if (r.mode !== 'single') return;
    assert.ok(r.postedWhileBusy <= 4, `single-shot receives: ${r.postedWhileBusy} read events the ring held after the busy loop`);
    assert.equal(r.enobufs, 0, 'the receive pool never ran dry');
  };
  it(`the default ring (${defaultRecvMode} receives): at most a few receive buffers taken, the pool never dry`, async () => {
    const r = await trickle();
    if (process.env['MEGAPIPE_RECV'] !== 'capped') assert.notEqual(r.mode, 'capped', 'capped receives only when asked for');
    check(r);
  });
  it('capped receives asked for (the control: the measure sees a buffer taken per segment)', { skip: cappedRecvSkip }, async () => {
    const r = await withEnv({ MEGAPIPE_RECV: 'capped' }, trickle);
    assert.equal(r.mode, 'capped');
    assert.equal(r.bad, 0, 'every byte the peer sent');
    assert.ok(r.postedWhileBusy > 4, `capped receives: ${r.postedWhileBusy} read events the ring held after the busy loop`);
  });
  it('single-shot receives forced (MEGAPIPE_RECV=single): the same', { skip: defaultRecvMode === 'single' && 'the default ring receives single-shot already' }, async () => {
    const r = await withEnv({ MEGAPIPE_RECV: 'single' }, trickle);
    assert.equal(r.mode, 'single');
    check(r);
  });
});
