// The ring set-up step-down: on a kernel without DEFER_TASKRUN, SINGLE_ISSUER or COOP_TASKRUN the channel must
// still work (completions are then posted by task work the kernel runs on its own, and the eventfd still wakes
// the loop). MEGAPIPE_RING_SETUP=N forces the addon to start at step N, so every path older kernels take runs
// here, each in its own process, with an echo of random sizes verified byte for byte.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { uringSkip } from './helpers.js';

const child = new URL('./fixtures/ring-setup-child.js', import.meta.url).pathname;

function runChild(level: number): Promise<{ features: Record<string, unknown>; bytes: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [child], { env: { ...process.env, MEGAPIPE_RING_SETUP: String(level) }, timeout: 60000 },
      (err, stdout, stderr) => (err ? reject(new Error(`level ${level}: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

describe('io_uring set-up step-down', { skip: uringSkip }, () => {
  // step: flags requested (the addon's table in native/megapipe.c, ring_setup)
  const steps = [
    { level: 0, what: 'SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN (the default on 6.1+)', defer: true, single: true },
    { level: 1, what: 'SINGLE_ISSUER | COOP_TASKRUN (no DEFER_TASKRUN: 5.19–6.0)', defer: false, single: true },
    { level: 2, what: 'COOP_TASKRUN (no SINGLE_ISSUER)', defer: false, single: false },
    { level: 3, what: 'SUBMIT_ALL only (5.18)', defer: false, single: false },
    { level: 4, what: 'no set-up flags', defer: false, single: false },
  ];
  for (const s of steps) {
    it(`works with ${s.what}`, async () => {
      const r = await runChild(s.level);
      assert.ok(r.bytes > 0);
      if (s.level > 0) assert.equal(r.features.deferTaskrun, false);
      if (s.level > 1) assert.equal(r.features.singleIssuer, false);
      if (s.level === 0 && r.features.deferTaskrun !== true) return;   // a kernel that stepped down by itself
      assert.equal(r.features.deferTaskrun, s.defer);
      assert.equal(r.features.singleIssuer, s.single);
    });
  }
});
