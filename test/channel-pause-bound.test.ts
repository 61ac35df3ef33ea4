// What a paused connection still receives is bounded. A peer in another process streams as fast as it can; the
// handler pauses the connection at its first read event past 256 KiB; a second later, the bytes the channel received
// after the pause (stats().bytesRead) must be at most the bound of the connection's receive mode (src/uring/receive.ts).
// Those bytes are copied into the connection's stash (JavaScript memory) until it resumes, so this is the memory a
// paused connection can cost.
// On a ring without DEFER_TASKRUN (native/ring.c, defer_wake) the kernel runs receive work at any kernel entry of the
// thread, and an uncapped multishot receive took the whole receive pool (32 MiB by default) before the handler could
// pause: there receives are single-shot (one 16 KiB buffer), or — asked for with MEGAPIPE_RECV=capped, Linux 6.17 —
// multishot ending by itself after 256 KiB. On a DEFER_TASKRUN ring a multishot receive posts only in the ring's own
// enters (about 1.4 MB measured here after the pause): at most PAUSED_MAX. Four runs, each in a child process: the
// default ring, single-shot forced, capped asked for, DEFER_TASKRUN forced (each where the kernel allows). Then the
// connection resumes and every byte read is checked.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cappedRecvSkip, deferRingSkip, uringSkip } from './helpers.js';

const PAUSED_MAX = 4 * 1024 * 1024;
const BUF = 16 * 1024;   // the default receive buffer
/** Bytes a paused connection may still receive, per receive mode: what its request has left (plus one buffer). */
const BOUND: Record<string, number> = { multishot: PAUSED_MAX, capped: 17 * BUF, single: BUF };
const child = fileURLToPath(new URL('./fixtures/pause-bound-child.js', import.meta.url));

interface Result { deferTaskrun: boolean; receive: string; atPause: number; afterPause: number; checked: number; bad: number }

function run(env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child], { env: { ...process.env, ...env }, timeout: 60000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as Result)));
  });
}

describe('a paused connection receives a bounded amount (uring)', { skip: uringSkip }, () => {
  const runs = [
    ['the default ring', {}],
    ['single-shot receives (forced)', { MEGAPIPE_RECV: 'single' }],
    ['capped multishot receives (asked for)', { MEGAPIPE_RECV: 'capped' }],
    ['a DEFER_TASKRUN ring (forced)', { MEGAPIPE_RING_SETUP: '0' }],
  ] as const;
  for (const [what, env] of runs) {
    const skip = what.startsWith('a DEFER') ? deferRingSkip : what.startsWith('capped') ? cappedRecvSkip : false;
    it(`${what}: at most its mode's bound after pause(), then every byte in order on resume`, { skip }, async () => {
      const r = await run(env);
      if ('MEGAPIPE_RECV' in env) assert.equal(r.receive, env.MEGAPIPE_RECV);
      if ('MEGAPIPE_RING_SETUP' in env) assert.equal(r.receive, 'multishot');
      const bound = BOUND[r.receive];
      assert.ok(bound !== undefined, `receive mode ${r.receive}`);
      assert.ok(r.atPause >= 256 * 1024, `paused after ${r.atPause} B`);
      assert.ok(r.afterPause <= bound, `received after pause(): ${r.afterPause} B, bound ${bound} B (${r.receive} receives, ring ${r.deferTaskrun ? 'with' : 'without'} DEFER_TASKRUN)`);
      assert.ok(r.checked > r.atPause, `reading resumed: ${r.checked} B checked`);
      assert.equal(r.bad, 0, 'every byte the peer sent, in order');
    });
  }
});
