// Where a benchmark's results go and what is recorded with them: the command that reproduces the run, the commit
// it measured, the machine it ran on, and — with --record NAME — a copy of its summary under bench/summaries/
// to commit, so every figure quoted in BENCHMARKS.md leads back to the run it came from. Shared by every harness.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { RESULTS_DIR, ROOT, SUMMARIES_DIR } from './paths.js';

/** The command line of this process as typed (script path relative to the working directory). */
export function reproduceCommand(): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['node', relative(process.cwd(), process.argv[1]!) || process.argv[1]!, ...process.argv.slice(2)].map(quote).join(' ');
}

/** Creates the results directory: `out` if given, else bench/results/<prefix>-<UTC time>. Returns its path. */
export function makeResultsDir(prefix: string, out?: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const dir = out ?? join(RESULTS_DIR, `${prefix}-${stamp}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Kernel, CPU count and model, Node version. */
export function machineInfo(): { kernel: string; cpus: number; cpuModel: string; node: string } {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try { cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel; } catch { /* not Linux */ }
  return { kernel: release(), cpus: cpus().length, cpuModel, node: process.version };
}

export interface GitInfo {
  commit: string;
  branch: string;
  /** Files changed against the commit (tracked, and untracked outside ignored paths and bench/summaries/): the
   *  measured code may differ. */
  dirty: string[];
}

/** The commit the measured code comes from, and whether the working tree differs from it. */
export function gitInfo(): GitInfo {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0) return { commit: 'unknown (not a git checkout)', branch: '', dirty: [] };
  const branch = git('rev-parse', '--abbrev-ref', 'HEAD').stdout.trim();
  // (summaries recorded by earlier runs, not yet committed, are not part of the measured code)
  const dirty = git('status', '--porcelain', '--untracked-files=all').stdout.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3))
    .filter((f) => !f.startsWith('bench/summaries/'));
  return { commit: head.stdout.trim(), branch, dirty };
}

/** How much later than dist/build.json a compiled file may be written and still count as that build's (a copy
 *  of dist/ made without -p rewrites every file within moments; tsc alone takes seconds to type-check first). */
const STAMP_SLACK_MS = 1000;

/**
 * Where the compiled code under `path` (a file or directory inside some checkout's dist/) comes from: its
 * dist/build.json, written by scripts/build-stamp.mjs after each build. "compiled from COMMIT", with the files that
 * differed from it, or a note that the build has no stamp (built before stamps, or by hand). tsc rewrites every
 * output each time it runs, and only `npm run build`/`prepare` write the stamp: a compiled file newer than the stamp
 * (`npx tsc -p tsconfig.json` afterwards, or a build whose tsc failed after emitting) means the stamp no longer says
 * where the code comes from.
 */
export function buildOf(path: string): { commit: string | null; text: string } {
  let dir = resolve(path);
  while (basename(dir) !== 'dist' && dirname(dir) !== dir) dir = dirname(dir);
  let stamp: { commit?: string | null; dirty?: string[] } | undefined;
  try { stamp = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as typeof stamp; } catch { /* none */ }
  if (basename(dir) !== 'dist' || stamp === undefined) return { commit: null, text: 'no build stamp (dist/build.json)' };
  const mtime = (p: string): number => { try { return statSync(p).mtimeMs; } catch { return 0; } };
  const stampedAt = mtime(join(dir, 'build.json'));
  const compiled = [resolve(path), join(dir, 'src', 'index.js')].filter((p) => p.endsWith('.js'));
  if (compiled.some((p) => mtime(p) > stampedAt + STAMP_SLACK_MS)) {
    return { commit: null, text: 'compiled after its build stamp (dist/build.json; tsc run alone?): origin unknown' };
  }
  if (!stamp.commit) return { commit: null, text: 'compiled outside a git checkout of megapipe' };
  const d = stamp.dirty ?? [];
  return { commit: stamp.commit, text: `compiled from ${stamp.commit.slice(0, 12)}${d.length ? ` with ${d.length} file${d.length === 1 ? '' : 's'} changed (${d.slice(0, 4).join(', ')}${d.length > 4 ? ', …' : ''})` : ''}` };
}

/** The provenance line of this checkout's own dist/: a build from another commit than HEAD is said in bold. */
function buildLine(g: GitInfo): string {
  const b = buildOf(join(ROOT, 'dist'));
  const stale = b.commit !== null && b.commit !== g.commit;
  return `- Build: dist/ ${b.text}${stale ? ' — **not the commit above: the measured code is that build\'s**' : ''}`;
}

/** What every summary states about the run it summarises. */
export interface Provenance {
  command: string;
  started: string;
  finished: string;
  git: GitInfo;
  machine: { kernel: string; cpus: number; cpuModel: string; node: string };
  /** e.g. "3 requested, interleaved" */
  repetitions: string;
  /** Runs by state over the whole run, e.g. "40 runs: 36 clean, 1 failed, 3 foreign load (2 re-run)". */
  runs: string;
  idleCheck: string;
  extra?: string[];
}

/** The provenance block at the top of a summary.md (Markdown). */
export function provenanceMarkdown(p: Provenance): string {
  const g = p.git;
  const tree = g.dirty.length === 0 ? 'working tree clean'
    : `**working tree differs from the commit** (${g.dirty.length} file${g.dirty.length === 1 ? '' : 's'}: ${g.dirty.slice(0, 8).join(', ')}${g.dirty.length > 8 ? ', …' : ''})`;
  return [
    `- Command: \`${p.command}\``,
    `- Commit: ${g.commit}${g.branch ? ` (${g.branch})` : ''}, ${tree}`,
    buildLine(g),
    `- Date: ${p.started} – ${p.finished} (UTC)`,
    `- Machine: ${p.machine.cpuModel}, ${p.machine.cpus} CPUs, Linux ${p.machine.kernel}, Node ${p.machine.node}`,
    `- Repetitions: ${p.repetitions}`,
    `- Runs: ${p.runs}`,
    `- Idle check before the start: ${p.idleCheck}`,
    ...(p.extra ?? []).map((e) => `- ${e}`),
    '',
  ].join('\n');
}

/** A summary name for --record: letters, digits, dots, dashes and underscores. */
export function checkRecordName(name: string): string | undefined {
  return /^[A-Za-z0-9._-]{1,80}$/.test(name) ? undefined : `--record takes a name of letters, digits, ".", "_" and "-" (got ${JSON.stringify(name)})`;
}

/** bench/summaries/<UTC date>-<name>/ for --record NAME. */
export function summaryDir(name: string, date = new Date()): string {
  return join(SUMMARIES_DIR, `${date.toISOString().slice(0, 10)}-${name}`);
}

/**
 * Copies a finished run's summary.md (and the files it links, e.g. charts) from the results directory into
 * `dir` (summaryDir(name), checked free before measuring), to be committed. Returns the path, relative to the
 * repository root.
 */
export function recordSummary(dir: string, resultsDir: string, files: string[] = []): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['summary.md', ...files]) {
    const from = join(resultsDir, f);
    if (existsSync(from)) copyFileSync(from, join(dir, basename(f)));
  }
  return relative(ROOT, dir);
}

/** One run as the per-run list of a summary shows it: the CPU figures with steal and foreign load beside them. */
export interface RunLine {
  rep: number;
  point: string;
  server: string;
  state: string;
  /** server-core µs per transaction/request/operation (steal excluded) */
  us?: number;
  rate?: number;
  cost?: { serverCoreBusy: number; clientCoreBusy: number; serverCoreSteal: number; clientCoreSteal: number; foreignCores: number };
  problems: string[];
}

/** The "every run" section of a summary: one line per run, dropped ones included with why. */
export function runsMarkdown(lines: RunLine[], unit: string, rateUnit: string): string {
  const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(1)}%`);
  const num = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v.toPrecision(3));
  const esc = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const out = [`| rep | point | server | state | ${unit} | ${rateUnit} | srv busy | cli busy | srv steal | cli steal | foreign (cores) | problems |`,
    '|---:|:---|:---|:---|---:|---:|---:|---:|---:|---:|---:|:---|'];
  for (const l of lines) {
    out.push(`| ${l.rep} | ${esc(l.point)} | ${esc(l.server)} | ${l.state} | ${num(l.us)} | ${num(l.rate)} | ${pct(l.cost?.serverCoreBusy)} | ${pct(l.cost?.clientCoreBusy)} | ` +
      `${pct(l.cost?.serverCoreSteal)} | ${pct(l.cost?.clientCoreSteal)} | ${l.cost ? l.cost.foreignCores.toFixed(2) : '–'} | ${esc(l.problems.join('; ').slice(0, 300))} |`);
  }
  return out.join('\n') + '\n';
}

/** "40 runs: 36 clean, 1 failed, 3 foreign load" over a whole run. */
export function runsLine(states: readonly string[]): string {
  const n = (s: string) => states.filter((x) => x === s).length;
  const parts = [`${n('clean')} clean`];
  if (n('failed')) parts.push(`${n('failed')} failed`);
  if (n('foreign')) parts.push(`${n('foreign')} foreign load`);
  if (n('steal')) parts.push(`${n('steal')} steal`);
  return `${states.length} runs: ${parts.join(', ')} (only clean runs enter the tables; disturbed runs were re-run up to --retries times)`;
}
