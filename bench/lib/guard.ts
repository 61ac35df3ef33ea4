// Refuses to benchmark on a machine that is already busy: a foreign compile or test run on either core would
// be billed to whichever server happened to run beside it. On a VM, steal (the hypervisor running another guest
// on our vCPU) counts as busy here: it is a disturbance of the same kind, from outside the guest.
import { setTimeout as sleep } from 'node:timers/promises';
import { busyFractions, readCoreTicks, stealFractions } from './procfs.js';

export interface IdleCheck {
  ok: boolean;
  /** Busy fraction of each core over the sampling interval (steal excluded), and steal fraction. */
  busy: number[];
  steal: number[];
  message: string;
}

/** Samples /proc/stat over `seconds` and reports whether every core was at most `maxBusy` busy (busy + steal). */
export async function checkIdle(seconds = 1, maxBusy = 0.15): Promise<IdleCheck> {
  const a = readCoreTicks();
  await sleep(seconds * 1000);
  const b = readCoreTicks();
  const busy = busyFractions(a, b), steal = stealFractions(a, b);
  const worst = busy.reduce((m, v, i) => Math.max(m, v + (steal[i] ?? 0)), 0);
  const pct = busy.map((v, i) => `cpu${i} ${(v * 100).toFixed(0)}%${(steal[i] ?? 0) >= 0.01 ? ` + ${((steal[i] ?? 0) * 100).toFixed(0)}% steal` : ''}`).join(', ');
  return {
    ok: worst <= maxBusy,
    busy,
    steal,
    message: worst <= maxBusy
      ? `machine idle enough (${pct})`
      : `foreign load on the machine: ${pct} busy over ${seconds} s (limit ${(maxBusy * 100).toFixed(0)}%)`,
  };
}

/** Waits (up to `maxS` seconds) for a second in which no core is more than 15% busy (between repetitions). */
export async function waitForIdle(maxS: number): Promise<void> {
  const until = Date.now() + maxS * 1000;
  while (Date.now() < until) if ((await checkIdle()).ok) return;
}

/** Exits with code 2 and a clear message if the machine is busy, unless `force` (then it only warns). */
export async function refuseIfBusy(force: boolean, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<IdleCheck> {
  const check = await checkIdle();
  if (check.ok) return check;
  if (force) {
    log(`warning: ${check.message}; continuing because of --force (figures will be noisy)`);
    return check;
  }
  log(`refusing to benchmark: ${check.message}.\nWait for the other work to finish, or pass --force to run anyway.`);
  process.exit(2);
}
