// The ring set-up step-down: on a kernel without DEFER_TASKRUN, SINGLE_ISSUER, COOP_TASKRUN or SUBMIT_ALL the channel
// must still work (completions are then posted by task work the kernel runs on its own, and the eventfd still wakes
// the loop). MEGAPIPE_RING_SETUP=N forces the addon to start at step N of its table (native/ring.c, ring_setup),
// so every path older kernels take runs here, each in its own process: each step must report exactly the flags it
// asks for — the channel's features.deferTaskrun/singleIssuer true only on the steps that request them, the full set
// (COOP_TASKRUN, TASKRUN_FLAG, SUBMIT_ALL too) from the addon's probe — and echo random sizes byte for byte, answering
// both from the event handler and from a timer. A step this kernel refuses (it would step further down by itself)
// is skipped, saying so. Step 0 is taken by itself only where DEFER_TASKRUN's completions signal the eventfd at once
// (native/ring.c, defer_wake); elsewhere it still runs here, forced.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { uringSkip } from './helpers.js';
import { native } from '../src/native.js';

const child = new URL('./fixtures/ring-setup-child.js', import.meta.url).pathname;

// <linux/io_uring.h>
const SUBMIT_ALL = 1 << 7, COOP_TASKRUN = 1 << 8, TASKRUN_FLAG = 1 << 9, SINGLE_ISSUER = 1 << 12, DEFER_TASKRUN = 1 << 13;
const CQSIZE = 1 << 3, CLAMP = 1 << 4;   // asked on every step

// the addon's table: step N asks for these (plus CQSIZE | CLAMP)
const steps = [
  { flags: SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL | COOP_TASKRUN | TASKRUN_FLAG, what: 'SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN | SUBMIT_ALL (6.1+)' },
  { flags: SINGLE_ISSUER | SUBMIT_ALL | COOP_TASKRUN | TASKRUN_FLAG, what: 'SINGLE_ISSUER | COOP_TASKRUN | SUBMIT_ALL, no DEFER_TASKRUN (6.0)' },
  { flags: SUBMIT_ALL | COOP_TASKRUN | TASKRUN_FLAG, what: 'COOP_TASKRUN | SUBMIT_ALL, no SINGLE_ISSUER (5.19)' },
  { flags: SUBMIT_ALL, what: 'SUBMIT_ALL only (5.18)' },
  { flags: 0, what: 'no set-up flags' },
];

/** The step this kernel takes without being forced: the first it accepts, but step 1 where step 0's DEFER_TASKRUN would
 * not signal the eventfd at once (native/ring.c, defer_wake; test/channel-wake). */
function naturalStep(): number {
  const flags = native?.probe().setupFlags;
  return steps.findIndex((s) => flags === (s.flags | CQSIZE | CLAMP));
}
/** The first step this kernel accepts when forced: step 0 even where the wake-up probe passes it over. */
function firstAccepted(natural: number): number {
  return natural === 1 && native?.probe().deferWakes === false ? 0 : natural;
}

interface ChildResult { features: Record<string, unknown>; setupFlags: number; bytes: number; fromTimer: number }

function runChild(level: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child], { env: { ...process.env, MEGAPIPE_RING_SETUP: String(level) }, timeout: 60000 },
      (err, stdout, stderr) => (err ? reject(new Error(`level ${level}: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ChildResult)));
  });
}

describe('io_uring set-up step-down', { skip: uringSkip }, () => {
  const natural = uringSkip ? 0 : naturalStep();
  const accepted = uringSkip ? 0 : firstAccepted(natural);
  it('the kernel takes one of the addon\'s steps by itself', () => assert.ok(natural >= 0, 'the probe\'s set-up flags match a step of the table'));
  steps.forEach((s, level) => {
    const skip = level < accepted ? `this kernel refuses step ${level} (it steps down to ${natural} by itself)` : false;
    it(`step ${level}: ${s.what}`, { skip }, async () => {
      const r = await runChild(level);
      assert.equal(r.setupFlags, s.flags | CQSIZE | CLAMP, `step ${level} set up with exactly its flags (0x${r.setupFlags.toString(16)})`);
      assert.equal(r.features.deferTaskrun, (s.flags & DEFER_TASKRUN) !== 0, 'the channel\'s ring: DEFER_TASKRUN only where asked');
      assert.equal(r.features.singleIssuer, (s.flags & SINGLE_ISSUER) !== 0, 'the channel\'s ring: SINGLE_ISSUER only where asked');
      assert.ok(r.bytes > 0 && r.fromTimer > 0, `echoed ${r.bytes} B, ${r.fromTimer} B of it from a timer`);
    });
  });
});
