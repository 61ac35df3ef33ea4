// System calls of a server, counted by `perf stat -e raw_syscalls:sys_enter` attached to its processes. The
// tracepoint costs a little per call, so runs that count syscalls are flagged and their CPU figures are not
// mixed with the plain ones.
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/** True when perf can count syscall tracepoints here (perf installed, permissions, tracefs). */
export function perfAvailable(): boolean {
  const r = spawnSync('perf', ['stat', '-x,', '-e', 'raw_syscalls:sys_enter', '--', 'true'], { encoding: 'utf8' });
  return r.status === 0 && /raw_syscalls:sys_enter/.test(r.stderr) && !/not supported|<not counted>/.test(r.stderr);
}

export interface SyscallCounter {
  /** Stops counting; resolves to the number of system calls entered, or undefined if perf failed. */
  stop(): Promise<number | undefined>;
}

/** Starts counting the system calls of `pids` (all their threads); resolves once perf is attached. */
export async function countSyscalls(pids: number[]): Promise<SyscallCounter> {
  const child = spawn('perf', ['stat', '-x,', '-e', 'raw_syscalls:sys_enter', '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const done = new Promise<void>((res) => child.once('close', () => res()));
  await sleep(300); // perf attaches asynchronously; counting from a little before the load starts is harmless
  return {
    async stop() {
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
      const m = /^(\d+),[^,]*,raw_syscalls:sys_enter/m.exec(err);
      return m ? Number(m[1]) : undefined;
    },
  };
}
