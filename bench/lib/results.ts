// Where a benchmark's results go and what is recorded with them: the command that reproduces the run and the
// machine it ran on. Shared by every harness (rpc, http, memcached, idle).
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join, relative } from 'node:path';
import { RESULTS_DIR } from './paths.js';

/** The command line of this process as typed (script path relative to the working directory). */
export function reproduceCommand(): string {
  return ['node', relative(process.cwd(), process.argv[1]!) || process.argv[1]!, ...process.argv.slice(2)].join(' ');
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
