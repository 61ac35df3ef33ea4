// Where things are: the repository root (found from this file, compiled or not), the C programs, results.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

/** The repository root: commands in the server registry run from here. */
export const ROOT = findRoot();
export const C_DIR = join(ROOT, 'bench', 'c');
export const C_BIN = join(C_DIR, 'bin');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');
/** Committed summaries of the runs BENCHMARKS.md quotes (--record NAME). */
export const SUMMARIES_DIR = join(ROOT, 'bench', 'summaries');

/**
 * Builds bench/c/bin/* with make when a program is missing or older than its sources (`make -q` says so: a checkout
 * that changed a generator's C must not measure the old binary); throws with make's output on failure. Without make,
 * programs that exist are used as they are.
 */
export function ensureCPrograms(names: string[] = ['epoll-echo', 'uring-echo', 'rpc-load'], dir = C_DIR): void {
  if (names.every((n) => existsSync(join(dir, 'bin', n)))) {
    const q = spawnSync('make', ['-q', '-C', dir], { encoding: 'utf8' });
    if (q.status === 0 || q.error) return;
  }
  const r = spawnSync('make', ['-C', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C ${dir} failed:\n${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}`);
}

/** A TCP port that was free on `host` a moment ago (servers we do not control cannot be told to use port 0). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.once('error', rej);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

/** Pins this (harness) process to `cpus` with taskset, so its sampling never lands on the server's core. */
export function pinSelf(cpus: string): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { encoding: 'utf8' });
  return r.status === 0;
}
