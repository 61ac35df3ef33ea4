// What a paused connection still receives is bounded. A peer in another process streams as fast as it can; the
// handler pauses the connection at its first read event past 256 KiB; a second later, the bytes the channel received
// after the pause (stats().bytesRead) must be at most PAUSED_MAX. Those bytes are copied into the connection's stash
// (JavaScript memory) until it resumes, so this is the memory a paused connection can cost.
// On a ring without DEFER_TASKRUN (native/ring.c, defer_wake) the kernel runs receive work at any kernel entry of the
// thread, and a multishot receive took the whole receive pool (32 MiB by default) before the handler could pause:
// there receives are single-shot (src/uring/receive.ts). On a DEFER_TASKRUN ring a multishot receive posts only in the
// ring's own enters (about 1.4 MB measured here after the pause). Both ring kinds run: the default, and DEFER_TASKRUN
// forced in a child process where the kernel takes it. Then the connection resumes and every byte read is checked.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deferRingSkip, uringSkip } from './helpers.js';

const PAUSED_MAX = 4 * 1024 * 1024;
const child = fileURLToPath(new URL('./fixtures/pause-bound-child.js', import.meta.url));

interface Result { deferTaskrun: boolean; atPause: number; afterPause: number; checked: number; bad: number }

function run(env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child], { env: { ...process.env, ...env }, timeout: 60000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as Result)));
  });
}

describe('a paused connection receives a bounded amount (uring)', { skip: uringSkip }, () => {
  for (const [what, env] of [['the default ring', {}], ['a DEFER_TASKRUN ring (forced)', { MEGAPIPE_RING_SETUP: '0' }]] as const) {
    const skip = what.startsWith('a DEFER') && deferRingSkip;
    it(`${what}: at most ${PAUSED_MAX / 1048576} MiB after pause(), then every byte in order on resume`, { skip }, async () => {
      const r = await run(env);
      assert.ok(r.atPause >= 256 * 1024, `paused after ${r.atPause} B`);
      assert.ok(r.afterPause <= PAUSED_MAX, `received after pause(): ${r.afterPause} B (ring ${r.deferTaskrun ? 'with' : 'without'} DEFER_TASKRUN)`);
      assert.ok(r.checked > r.atPause, `reading resumed: ${r.checked} B checked`);
      assert.equal(r.bad, 0, 'every byte the peer sent, in order');
    });
  }
});
