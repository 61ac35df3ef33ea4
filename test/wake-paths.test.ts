// Both wake-ups of a channel (native/loop.c): woken by an eventfd the ring signals (a DEFER_TASKRUN ring), or by the
// ring fd itself (a ring without DEFER_TASKRUN). The suite runs under the default one; this file runs every channel
// test file again in a child `node --test` with the other one forced (MEGAPIPE_WAKE), so that each contract of the
// turn holds under both: bounded drain rounds, JavaScript never called while the CQ is read, and no lost wake-up —
// completions posted inline by JavaScript's own flush or a timer's, rows refused before the kernel saw them, a full
// CQ, a closing channel. (channel-ring-setup runs each set-up step under both by itself.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { uringSkip } from './helpers.js';
import { createChannel } from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const files = readdirSync(here).filter((f) => /^channel-.*\.test\.js$/.test(f) && f !== 'channel-ring-setup.test.js').sort();

/** The wake-up a channel of this process gets (the default, or what MEGAPIPE_WAKE asks for here). */
function ownWake(): string {
  const ch = createChannel({ backend: 'uring' });
  try { return ch.features.wake; } finally { ch.close(); }
}

describe('the channel tests under the other wake-up', { skip: uringSkip }, () => {
  const own = uringSkip ? 'eventfd' : ownWake();
  const other = own === 'ringfd' ? 'eventfd' : 'ringfd';
  const env: NodeJS.ProcessEnv = { ...process.env, MEGAPIPE_WAKE: other };
  delete env.NODE_TEST_CONTEXT;   // set for the files node --test runs: a child runner would skip its files

  it(`MEGAPIPE_WAKE=${other} gives a channel that wake-up (this run's own: ${own})`, () => {
    const script = `import('./../src/index.js').then((m) => { const ch = m.createChannel({ backend: 'uring' }); console.log(JSON.stringify(ch.features)); ch.close(); })`;
    const f = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here, env, encoding: 'utf8' })) as { wake: string; deferTaskrun: boolean };
    assert.equal(f.wake, other);
    if (other === 'ringfd') assert.equal(f.deferTaskrun, false, 'no DEFER_TASKRUN on a ring whose fd wakes the loop');
  });

  for (const file of files) {
    it(`${file} with MEGAPIPE_WAKE=${other}`, async () => {
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(process.execPath, ['--test', '--test-concurrency=1', file], { cwd: here, env, timeout: 600_000, maxBuffer: 64 << 20 },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr }));
      });
      const failed = r.out.split('\n').filter((l) => /^\s*not ok /.test(l));
      assert.equal(r.code, 0, `${file} under MEGAPIPE_WAKE=${other}: exit ${r.code}\n${failed.join('\n')}\n${r.out.slice(-4000)}`);
      assert.match(r.out, /^# fail 0$/m);
    });
  }
});
