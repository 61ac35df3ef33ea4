// bench/rpc.ts end to end on the smallest run it accepts (the C epoll server, 4 connections, 0.3 s, --force: the
// machine is shared while tests run, and no figure is read here), then `--from` redrawing that run's report, with
// `--record` copying it into bench/summaries (it printed nothing and recorded nothing before).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCPrograms, SUMMARIES_DIR } from '../bench/lib/paths.js';

const rpc = fileURLToPath(new URL('../bench/rpc.js', import.meta.url));
const hasMake = !spawnSync('make', ['--version']).error;

it('rpc --from FILE --record NAME redraws an earlier run and records its summary', { skip: hasMake ? false : 'no make (the C servers)' }, () => {
  ensureCPrograms();
  const out = mkdtempSync(join(tmpdir(), 'megapipe-rpc-from-'));
  const name = `test-from-${process.pid}`;
  let recorded: string | undefined;
  try {
    const run = spawnSync(process.execPath, [rpc, '--figure', 'conns', '--txns-list', '0', '--servers', 'epoll-echo', '--reps', '1',
      '--duration', '0.3', '--warmup', '0', '--conns', '4', '--retries', '0', '--out', out, '--force'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.ok(existsSync(join(out, 'results.json')));
    const redraw = spawnSync(process.execPath, [rpc, '--from', join(out, 'results.json'), '--out', join(out, 'redrawn'), '--record', name], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(redraw.status, 0, `${redraw.stdout}\n${redraw.stderr}`);
    const m = /Summary recorded in (\S+)\/ \(commit it\)/.exec(redraw.stdout);
    assert.ok(m, `no 'Summary recorded' line:\n${redraw.stdout}`);
    recorded = readdirSync(SUMMARIES_DIR).find((d) => d.endsWith(`-${name}`));
    assert.ok(recorded, 'the summary directory exists');
    const files = readdirSync(join(SUMMARIES_DIR, recorded!)).sort();
    assert.ok(files.includes('summary.md') && files.some((f) => f.endsWith('.svg')), files.join(' '));
    const again = spawnSync(process.execPath, [rpc, '--from', join(out, 'results.json'), '--out', join(out, 'redrawn'), '--record', name], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(again.status, 0, 'an existing record name is refused');
    assert.match(again.stderr + again.stdout, /exists already/);
  } finally {
    if (recorded) rmSync(join(SUMMARIES_DIR, recorded), { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});
