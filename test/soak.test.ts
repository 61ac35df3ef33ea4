// The soak (bench/soak.ts) in CI: 60 seconds of the four servers under serve() with hostile clients — megapipe's three
// and a node:http server on megapipe/net (node-http) —, and its pass criteria asserted: no byte lost or corrupted, every
// connection cleaned up, workers healthy, memory flat. No criterion depends on speed: a loaded machine only does less
// traffic. Memory on 60 s: the trend is the second half (--warmup 0.5); the RSS limits are loose (pools are still being
// touched for the first time); the leak detector is the V8 heap per accepted connection (4 KiB: at 60 s the heap still
// warms by up to about 1 KiB per connection; the leak injected below is 32 KiB of heap per connection), which does not
// depend on speed either. Each run includes the soak's second load (a fifth of the first) and its idle samples (3 s
// here). A second run injects faults into the servers (a byte flipped in every 300th write, 64 KiB kept per connection)
// and checks the soak fails exactly the criteria that should catch them; a third makes the node-http workers' channels
// drop the bytes queued at a close (the fault megapipe/net's destroy() had) and checks that the clients see it.
// Also: the memory criterion itself on synthetic series.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memoryTrend, type MemoryLimits } from '../bench/soak/criteria.js';
import { prng, uringSkip } from './helpers.js';

const SOAK = fileURLToPath(new URL('../bench/soak.js', import.meta.url));
const MIB = 1024 * 1024;

interface Criterion { name: string; ok: boolean; detail: string; knownBugsOnly?: boolean }
interface Summary { pass: boolean; criteria: Criterion[]; traffic: Record<string, { connections: number; resets: number; bytesVerified: number; scenarios: Record<string, number> }> }

/** Runs the soak with `args`; resolves with its exit code, output and JSON summary. */
function soak(args: string[], killAfterMs: number): Promise<{ code: number | null; out: string; summary: Summary }> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-soak-test-'));
  const json = join(dir, 'summary.json');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SOAK, ...args, '--json', json], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(killer);
      try { resolve({ code, out, summary: JSON.parse(readFileSync(json, 'utf8')) as Summary }); } catch (e) { reject(new Error(`no summary (exit ${code}): ${(e as Error).message}\n${out}`)); }
      finally { rmSync(dir, { recursive: true, force: true }); }
    });
  });
}

describe('soak: 60 s of every server with hostile clients', { skip: uringSkip }, () => {
  let run: Awaited<ReturnType<typeof soak>> | undefined;

  it('meets every pass criterion (failures of known bugs aside: see the TODO below)', { timeout: 600_000 }, async () => {
    run = await soak(['--minutes', '1', '--idle-s', '3', '--sample-s', '2', '--warmup', '0.5', '--rss-slope-max', '120', '--end-growth-max', '60', '--heap-slope-max', '20', '--heap-per-conn-max', '4096'], 480_000);
    const { summary, out } = run;
    const failed = summary.criteria.filter((c) => !c.ok && !c.knownBugsOnly);
    assert.deepEqual(failed.map((c) => `${c.name}: ${c.detail}`), [], `criteria failed:\n${out}`);
    // the run did what it is for: traffic of every kind, resets among it, every scenario at least once
    for (const [kind, t] of Object.entries(summary.traffic)) {
      assert.ok(t.bytesVerified > 0 && t.connections > 0, `${kind}: traffic verified`);
      assert.ok(t.resets > 0, `${kind}: some connections reset`);
    }
    assert.deepEqual(Object.keys(summary.traffic.echo!.scenarios).sort(), ['drip', 'half-close', 'normal', 'reset', 'stall']);
    assert.deepEqual(Object.keys(summary.traffic.memcached!.scenarios).sort(), ['drip', 'half-close', 'normal', 'pipelined', 'reset', 'stall']);
    assert.deepEqual(Object.keys(summary.traffic.http!.scenarios).sort(), ['abort-request', 'abort-response', 'close', 'drip', 'half-close', 'keep-alive', 'pipelined', 'reset', 'stall']);
    // node:http on megapipe/net ran the same HTTP scenarios, every byte of it verified, and its server was judged
    const nodeHttp = summary.traffic['node-http'];
    assert.ok(nodeHttp && nodeHttp.bytesVerified > 0 && nodeHttp.resets > 0, `node-http: traffic verified through megapipe/net\n${out}`);
    assert.deepEqual(Object.keys(nodeHttp.scenarios).sort(), Object.keys(summary.traffic.http!.scenarios).sort());
    for (const c of ['no byte lost or corrupted', 'every connection cleaned up', 'workers and channels healthy', 'memory flat after warm-up']) {
      assert.ok(summary.criteria.some((x) => x.name === `node-http: ${c}` && x.ok), `node-http: ${c}`);
    }
    assert.equal(run.code, summary.pass ? 0 : 1, 'the exit code says whether every criterion held');
  });

  it('sees no known bug', () => {
    assert.ok(run, 'the soak ran');
    const known = run.summary.criteria.filter((c) => c.knownBugsOnly);
    assert.deepEqual(known.map((c) => `${c.name}: ${c.detail}`), []);
  });

  it('catches what it is for: a byte flipped in every 300th write, a leak of 64 KiB per connection', { timeout: 300_000 }, async () => {
    const { code, summary, out } = await soak(['--minutes', '0.4', '--idle-s', '3', '--sample-s', '1', '--clients', '2', '--leak-per-conn', '65536', '--corrupt-every', '300',
      '--warmup', '0.5', '--rss-slope-max', '120', '--end-growth-max', '60', '--heap-slope-max', '20', '--heap-per-conn-max', '4096'], 240_000);
    assert.equal(code, 1, out);
    const failed = summary.criteria.filter((c) => !c.ok);
    const kinds = ['echo', 'memcached', 'http', 'node-http'];
    // every kind's verification and memory criterion fail, and nothing else does (a corrupted connection is still
    // cleaned up: the client resets it)
    assert.deepEqual(failed.map((c) => c.name).sort(), [...kinds.map((k) => `${k}: memory flat after warm-up`), ...kinds.map((k) => `${k}: no byte lost or corrupted`)].sort(), out);
    for (const c of failed) assert.match(c.detail, c.name.includes('memory') ? /bytes per accepted connection/ : /corrupt|want|chunk size/, c.detail);
  });

  it('catches the fault megapipe/net\'s destroy() had (5406892): node:http on it, the bytes queued at a close dropped', { timeout: 240_000 }, async () => {
    // every disconnect of the node-http workers' channels made abortive, as megapipe/net's destroy() was: the responses
    // to Connection: close requests (node-http.ts destroys those connections once the response is written) are cut
    const { code, summary, out } = await soak(['--kinds', 'node-http', '--drop-on-close', '--minutes', '0.3', '--reload-minutes', '0', '--clients', '1', '--idle-s', '2', '--sample-s', '1',
      '--warmup', '0.5', '--rss-slope-max', '120', '--end-growth-max', '60', '--heap-slope-max', '20', '--heap-per-conn-max', '4096'], 180_000);
    assert.equal(code, 1, out);
    const crit = (name: string) => summary.criteria.find((c) => c.name === `node-http: ${name}`)!;
    assert.equal(crit('no byte lost or corrupted').ok, false, out);
    assert.match(crit('no byte lost or corrupted').detail, /EOF after/);
    // the connections are still cleaned up, the workers healthy (memory is not judged: this run is short and small)
    assert.ok(crit('every connection cleaned up').ok, crit('every connection cleaned up').detail);
    assert.ok(crit('workers and channels healthy').ok, crit('workers and channels healthy').detail);
  });
});

describe('soak: the memory criterion', () => {
  const lim: MemoryLimits = { warmupFrac: 0.3, slopeMaxMiBPerMin: 1, endGrowthMaxPct: 10, endGrowthMinMiB: 8, perConnMaxBytes: 1024 };
  const DURATION = 30 * 60_000;
  /** A sample every 10 s for 30 min: `f(t_ms, i)` bytes, ±`noise` MiB uniform; 50 connections a second. */
  const series = (f: (t: number) => number, noise: number, seed = 1) => {
    const r = prng(seed), t: number[] = [], v: number[] = [], work: number[] = [];
    for (let ms = 0; ms <= DURATION; ms += 10_000) { t.push(ms); v.push(f(ms) + (r() * 2 - 1) * noise * MIB); work.push(ms / 20); }
    return { t, v, work };
  };
  const warm = (t: number) => 200 * MIB * Math.min(1, t / 120_000);   // pools touched during the first 2 minutes

  it('passes a flat series with noise after a warm-up', () => {
    const s = series(warm, 10);
    const r = memoryTrend(s.t, s.v, DURATION, lim, s.work);
    assert.ok(r.ok, r.why);
  });
  it('fails a steady leak of 2 MiB/min (slope)', () => {
    const s = series((t) => warm(t) + 2 * MIB * (t / 60_000), 10);
    const r = memoryTrend(s.t, s.v, DURATION, lim, s.work);
    assert.equal(r.ok, false);
    assert.match(r.why, /slope/);
  });
  it('fails a step of 40 MiB after the warm-up (end growth)', () => {
    const s = series((t) => warm(t) + (t > 12 * 60_000 ? 40 * MIB : 0), 2);
    const r = memoryTrend(s.t, s.v, DURATION, { ...lim, perConnMaxBytes: undefined }, s.work);
    assert.equal(r.ok, false);
    assert.match(r.why, /above post-warm-up/);
  });
  it('fails memory that stays after the load (idle) above anything the load reached', () => {
    const s = series(warm, 2);
    const r = memoryTrend(s.t, s.v, DURATION, lim, s.work, 200 * MIB + 30 * MIB);
    assert.equal(r.ok, false);
    assert.match(r.why, /idle after the load .* above the load's peak/);
    assert.ok(memoryTrend(s.t, s.v, DURATION, lim, s.work, 190 * MIB).ok, 'less than under load is fine');
  });
  // What glibc's malloc does under megapipe-http's load (RELIABILITY.md, "Soak"): RSS wanders by tens of MiB for
  // minutes (freed buffers stay in the per-thread arenas), and once the clients leave it stays wherever the load left
  // it, up to the load's peak — memory the allocator keeps for reuse, not memory the server retains
  const wander = (t: number) => warm(t) + 25 * MIB * Math.sin((2 * Math.PI * t) / (7 * 60_000));
  it('passes memory the allocator keeps: idle at the load\'s peak, above the post-warm-up value, reused by a second load', () => {
    const s = series(wander, 2);
    const peak = Math.max(...s.v.filter((_, i) => s.t[i]! >= lim.warmupFrac * DURATION));
    const again = series(wander, 2, 2).v.slice(120, 156);   // 6 minutes of the same load again (past its warm-up), then idle where it left
    const r = memoryTrend(s.t, s.v, DURATION, lim, s.work, peak + 3 * MIB, [...again, peak]);
    assert.ok(r.idle - r.postWarmup > Math.max(0.1 * r.postWarmup, 8 * MIB), `idle ${r.idle / MIB} MiB is above post-warm-up ${r.postWarmup / MIB} MiB + allowance`);
    assert.ok(r.ok, r.why);
    assert.equal(r.peak, peak);
  });
  it('fails memory a second load adds to what the first one left (not reused)', () => {
    const s = series(wander, 2);
    const again = series(wander, 2, 2).v.slice(120, 156).map((v, i) => v + i * 1.5 * MIB);   // +54 MiB over 6 minutes
    const r = memoryTrend(s.t, s.v, DURATION, lim, s.work, NaN, again);
    assert.equal(r.ok, false);
    assert.match(r.why, /second load/);
  });
  it('judges the V8 heap (collected before each sample) against its post-warm-up value, not its peak', () => {
    const s = series(wander, 2);
    const r = memoryTrend(s.t, s.v, DURATION, { ...lim, idleAgainst: 'post-warm-up' }, s.work, Math.max(...s.v));
    assert.equal(r.ok, false);
    assert.match(r.why, /idle after the load .* above post-warm-up/);
  });
  it('fails 2 KiB per connection (per-connection slope), whatever the rate', () => {
    for (const rate of [5, 50]) {
      const r0 = prng(7), t: number[] = [], v: number[] = [], work: number[] = [];
      for (let ms = 0; ms <= 60_000; ms += 2000) { const n = (ms / 1000) * rate; t.push(ms); work.push(n); v.push(20 * MIB + n * 2048 + (r0() * 2 - 1) * 0.2 * MIB); }
      const r = memoryTrend(t, v, 60_000, { ...lim, slopeMaxMiBPerMin: 1e6, endGrowthMaxPct: 1e6 }, work);
      assert.equal(r.ok, false, `${rate} connections/s`);
      assert.match(r.why, /bytes per accepted connection/);
    }
  });
});
