// The benchmark harness's own rules — verdicts only from clean runs, run states, steal and foreign-load accounting —
// checked without measuring anything (bench/selfcheck.ts): a harness that misjudges a run misreports every figure.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const selfcheck = fileURLToPath(new URL('../bench/selfcheck.js', import.meta.url));

it('bench/selfcheck.ts passes every check', () => {
  const r = spawnSync(process.execPath, [selfcheck], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^selfcheck: \d+ checks passed/m);
});
