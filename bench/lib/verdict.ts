// Which runs a figure may use, and when a goal may be judged at all. Shared by every harness.
//
// Each run ends in one state:
//   clean    no problem reported and an undisturbed window: its figures are used;
//   failed   the load generator or the server reported a problem (errors, mismatches, wrong byte counts, a
//            non-zero exit, no result, no CPU window): left out and counted, not re-run (a failure is a finding);
//   foreign  other processes used more than --foreign-max cores during the window: re-run, else left out;
//   steal    the hypervisor took more than --steal-max of one server or client core during the window: re-run,
//            else left out.
// A goal is judged only when every server it compares has at least MIN_CLEAN_RUNS clean runs at that point; a
// server missing from the run, or short of clean runs, makes it "not measured" — never "met".
import type { WindowCost } from './procfs.js';
import { summarize, type Summary } from './stats.js';

export type RunState = 'clean' | 'failed' | 'foreign' | 'steal';

/** Clean repetitions every compared server needs at a point before a goal is judged there. */
export const MIN_CLEAN_RUNS = 3;

/** Foreign CPU, in cores, above which a run is disturbed (a tenth of a core: a compiler or a test runner). */
export const FOREIGN_MAX_CORES = 0.1;

/**
 * Steal, as a fraction of one core's time over the window, above which a run is disturbed. Steal is excluded
 * from every busy figure, so it does not inflate µs per transaction directly; what it still does is take that
 * share of time from the server or the client (throughput of a client-bound run falls by about as much, wake-ups
 * come late, so batches grow and enters per transaction fall), and another guest's work pollutes caches. 5% keeps
 * that effect at or below half the run-to-run spread this machine shows (±10% on medians), so a run passing it
 * is off by no more than its neighbours; and 5% of a 2.5 s window is 12 ticks of USER_HZ, well above the
 * 1-tick resolution of /proc/stat, so rounding alone never trips it.
 */
export const STEAL_MAX = 0.05;

export interface Limits { foreignMaxCores: number; stealMax: number }

/** Whether the window of a run was disturbed by other processes or by the hypervisor, with the reasons. */
export function disturbance(cost: WindowCost, limits: Limits): { foreign: boolean; steal: boolean; problems: string[] } {
  const problems: string[] = [];
  const foreign = cost.foreignCores > limits.foreignMaxCores;
  if (foreign) problems.push(`foreign load: other processes used ${(cost.foreignCores * 100).toFixed(0)}% of a core during the window (${cost.foreignTop.join(', ')})`);
  const steal = cost.maxCoreSteal > limits.stealMax;
  if (steal) {
    problems.push(`steal: the hypervisor took ${(cost.maxCoreSteal * 100).toFixed(1)}% of a core during the window (server cores ` +
      `${(cost.serverCoreSteal * 100).toFixed(1)}%, client cores ${(cost.clientCoreSteal * 100).toFixed(1)}%; limit ${(limits.stealMax * 100).toFixed(1)}%)`);
  }
  return { foreign, steal, problems };
}

/** The problem line a harness adds when the client core saturated: a property of the point, not a fault of the run. */
export const SATURATED = 'client core saturated (>95% busy): the rate is client-bound; compare µs per transaction';

/** The problems that make a run failed: all but client saturation and the disturbances (which have their own states). */
export function fatalProblems(problems: readonly string[]): string[] {
  return problems.filter((p) => p !== SATURATED && !/^foreign load|^steal/.test(p));
}

/** The state of a record that says whether it is ok, noisy (foreign load) and stolen (steal). */
export function stateOf(r: { ok: boolean; noisy?: boolean; stolen?: boolean }): RunState {
  if (r.ok) return 'clean';
  if (r.stolen) return 'steal';
  if (r.noisy) return 'foreign';
  return 'failed';
}

/** A disturbed run is worth re-running; a failed one is a finding. */
export const disturbed = (s: RunState): boolean => s === 'foreign' || s === 'steal';

export interface Tally { runs: number; clean: number; failed: number; foreign: number; steal: number }

export function tally(states: readonly RunState[]): Tally {
  const t: Tally = { runs: states.length, clean: 0, failed: 0, foreign: 0, steal: 0 };
  for (const s of states) t[s]++;
  return t;
}

/** What was left out, e.g. "1 failed, 2 foreign load" ("" when nothing). */
export function droppedText(t: Tally): string {
  const parts: string[] = [];
  if (t.failed) parts.push(`${t.failed} failed`);
  if (t.foreign) parts.push(`${t.foreign} foreign load`);
  if (t.steal) parts.push(`${t.steal} steal`);
  return parts.join(', ');
}

/** "clean/all" with what was dropped: "3/3", "3/5 (1 failed, 1 steal)". */
export function fmtRuns(t: Tally): string {
  const d = droppedText(t);
  return `${t.clean}/${t.runs}${d ? ` (${d})` : ''}`;
}

/** Median and range of `metric` over the clean runs only. */
export function cleanSummary<T extends { state: RunState }>(runs: readonly T[], metric: (r: T) => number | undefined): Summary {
  return summarize(runs.filter((r) => r.state === 'clean').map((r) => metric(r) ?? NaN));
}

export type Status = 'met' | 'missed' | 'not measured';

export interface Verdict {
  status: Status;
  /** Not measured: which server is missing or short of clean runs. Measured: the comparison, in figures. */
  reason: string;
}

/** One server a goal compares: its runs at the point, or undefined when it was not in the run. */
export interface Side { name: string; states?: readonly RunState[] }

/**
 * Judges a goal from clean runs only: "not measured" when a side is absent or has fewer than `minClean` clean
 * runs (the reason names each), else `decide()`, which must read clean runs only (cleanSummary).
 */
export function judge(sides: readonly Side[], decide: () => { met: boolean; reason: string }, minClean = MIN_CLEAN_RUNS): Verdict {
  const missing: string[] = [];
  for (const s of sides) {
    if (!s.states || s.states.length === 0) { missing.push(`${s.name} not in the run`); continue; }
    const t = tally(s.states);
    if (t.clean < minClean) {
      const d = droppedText(t);
      missing.push(`${s.name} has ${t.clean} clean run${t.clean === 1 ? '' : 's'} of ${t.runs}${d ? ` (${d})` : ''}, needs ${minClean}`);
    }
  }
  if (missing.length > 0) return { status: 'not measured', reason: missing.join('; ') };
  const d = decide();
  return { status: d.met ? 'met' : 'missed', reason: d.reason };
}

/** "goal met — reason", "goal missed — reason", "not measured — reason". */
export function verdictText(v: Verdict): string {
  return `${statusText(v.status)} — ${v.reason}`;
}

/** "goal met", "goal missed", "not measured". */
export function statusText(s: Status): string {
  return s === 'not measured' ? s : `goal ${s}`;
}

/** Over several points: missed if any measured point missed, met only if every point was measured and met. */
export function overall(vs: readonly Verdict[]): Status {
  if (vs.length === 0) return 'not measured';
  if (vs.some((v) => v.status === 'missed')) return 'missed';
  return vs.every((v) => v.status === 'met') ? 'met' : 'not measured';
}

/** The limits and the verdict rule, one line for a summary. */
export function rulesText(limits: Limits, minClean = MIN_CLEAN_RUNS): string {
  return `A run is left out when it failed (errors, mismatches, wrong byte counts, a non-zero exit) or its window was disturbed ` +
    `(other processes > ${limits.foreignMaxCores} core, or steal > ${(limits.stealMax * 100).toFixed(1)}% of a server or client core; disturbed runs are ` +
    `re-run first). Figures are medians of clean runs; a goal is judged only with ≥ ${minClean} clean runs of every server it compares, ` +
    `otherwise "not measured".` +
    (limits.foreignMaxCores !== FOREIGN_MAX_CORES || limits.stealMax !== STEAL_MAX
      ? ` **These limits differ from the defaults (${FOREIGN_MAX_CORES} core, ${STEAL_MAX * 100}% steal): validation only, not a result.**` : '');
}
