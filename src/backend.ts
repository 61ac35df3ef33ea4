// Backend selection and channel creation, in one place (mp_create): io_uring when the kernel lets us, node:net
// otherwise — reported once.
import { kernelProbe, nativeLoadError } from './native.js';
import { pinThread, socketsAvailable } from './sockets.js';
import { cpus as osCpus } from 'node:os';
import { MegapipeError, MpCode, argError, errnoCode, rangeError, systemError } from './errors.js';
import { bounds, resolveLimits } from './limits.js';
import { UringChannel } from './uring/channel.js';
import { PortableChannel } from './portable/channel.js';
import type { BackendName, Channel, ChannelOptions } from './channel.js';
import { checkOptions, optionKeys } from './options.js';

const CHANNEL_OPTIONS = optionKeys<ChannelOptions>({ backend: true, limits: true, batch: true, cpu: true, pauseReadsAboveHighWater: true });


let reported = false;
let cached: { ok: boolean; reason: string } | undefined;

/** Whether io_uring can back a channel here, and if not, why (probed once per thread). */
export function uringAvailability(): { ok: boolean; reason: string } {
  if (cached) return cached;
  if (process.platform !== 'linux') return (cached = { ok: false, reason: `platform ${process.platform} has no io_uring` });
  const p = kernelProbe();
  if (p === null) return (cached = { ok: false, reason: `native addon unavailable: ${nativeLoadError}` });
  if (!p.ok) {
    const code = errnoCode(p.errno);
    const why = code === 'EPERM' ? 'io_uring_setup refused (EPERM): kernel.io_uring_disabled or a seccomp policy'
      : code === 'ENOSYS' ? 'io_uring_setup not available (ENOSYS): old kernel or a seccomp policy'
      : `io_uring_setup failed (${code})`;
    return (cached = { ok: false, reason: why });
  }
  if (!p.bufRing) return (cached = { ok: false, reason: `kernel ${p.kernel} lacks provided-buffer rings (Linux 5.19+ needed)` });
  if (!p.sparseFiles) return (cached = { ok: false, reason: `kernel ${p.kernel} lacks sparse fixed-file tables (Linux 5.19+ needed)` });
  // multishot receive arrived in 6.0 together with IORING_OP_SEND_ZC (47): use it as the witness
  if (!(p.ops ?? []).includes(47)) return (cached = { ok: false, reason: `kernel ${p.kernel} lacks multishot receive (Linux 6.0+ needed)` });
  const setup = p.deferTaskrun ? ' (DEFER_TASKRUN)' : p.deferWakes === false ? ' (no DEFER_TASKRUN: this kernel signals its eventfd late)' : '';
  return (cached = { ok: true, reason: `io_uring on Linux ${p.kernel}${setup}` });
}

/** The backend asked for: the option, then MEGAPIPE_BACKEND, then 'auto'. */
export function requestedBackend(requested: BackendName | undefined): BackendName {
  const env = process.env.MEGAPIPE_BACKEND;
  const want = requested ?? (env === 'uring' || env === 'portable' || env === 'auto' ? env : 'auto');
  if (want !== 'auto' && want !== 'uring' && want !== 'portable') throw argError('backend', '"auto", "uring" or "portable"', want);
  return want;
}

/** Resolves the backend for a new channel: option, then MEGAPIPE_BACKEND, then auto. */
export function selectBackend(requested: BackendName | undefined): 'uring' | 'portable' {
  const want = requestedBackend(requested);
  if (want === 'portable') return 'portable';
  const a = uringAvailability();
  if (a.ok) return 'uring';
  if (want === 'uring') throw new MegapipeError(MpCode.BACKEND_UNAVAILABLE, `io_uring backend requested but unavailable: ${a.reason}`);
  reportFallback(a.reason);
  return 'portable';
}

/** Says once per thread that channels use the portable backend, and why. */
export function reportFallback(reason: string): void {
  if (reported) return;
  reported = true;
  process.emitWarning(`megapipe: using the portable backend (node:net): ${reason}`, { code: MpCode.BACKEND_UNAVAILABLE });
}

/** CPUs of the machine (the highest CPU number + 1 that `cpu` may name). */
function cpuCount(): number { return Math.max(1, osCpus().length); }

/**
 * mp_create: a new channel on the calling thread (main thread or worker thread). Create it on the thread that uses
 * it: the io_uring is single-issuer. Several channels per thread are allowed. Close it with `close()`; a channel with
 * no open handles does not keep the process alive.
 */
export function createChannel(options: ChannelOptions = {}): Channel {
  checkOptions(options, CHANNEL_OPTIONS);
  if (options.pauseReadsAboveHighWater !== undefined && typeof options.pauseReadsAboveHighWater !== 'boolean') throw argError('pauseReadsAboveHighWater', 'a boolean', options.pauseReadsAboveHighWater);
  if (options.limits !== undefined && (typeof options.limits !== 'object' || options.limits === null)) throw argError('limits', 'an object', options.limits);
  const limitsIn = { ...options.limits };
  if (options.batch !== undefined) limitsIn.batch = options.batch;
  const probe = kernelProbe();
  const limits = resolveLimits(limitsIn, probe?.nofileHard ?? Infinity, probe?.nofileSoft ?? Infinity);
  let cpu = -1;
  if (options.cpu !== undefined) {
    if (!Number.isInteger(options.cpu) || options.cpu < 0 || options.cpu > bounds.cpuMax) throw rangeError('cpu', `a CPU number in 0..${bounds.cpuMax}`, options.cpu);
    if (socketsAvailable) {
      const r = pinThread(options.cpu);
      // EINVAL: no such CPU, or one outside the set this process may run on (a cpuset, taskset): the argument's fault
      if (r === -22) throw rangeError('cpu', `a CPU this process may run on (this machine has ${cpuCount()}; see also taskset, cpusets)`, options.cpu);
      if (r < 0) throw systemError(r, 'sched_setaffinity');
    } else if (options.cpu >= cpuCount()) {
      throw rangeError('cpu', `a CPU number in 0..${cpuCount() - 1}`, options.cpu);
    }
    cpu = options.cpu;
  }
  const backend = selectBackend(options.backend);
  const opts = { batch: limits.batch, pauseReadsAboveHighWater: options.pauseReadsAboveHighWater, cpu };
  if (backend === 'portable') return new PortableChannel(limits, opts);
  try {
    return new UringChannel(limits, opts);
  } catch (e) {
    // the kernel refused this ring although the probe's worked (memory, RLIMIT_MEMLOCK, a seccomp policy on one
    // registration, no fd left): 'auto' falls back as it does when the probe fails; 'uring' reports it
    if (requestedBackend(options.backend) !== 'auto' || !(e instanceof MegapipeError && e.syscall !== undefined)) throw e;
    reportFallback(`creating an io_uring channel failed: ${(e as Error).message}`);
    return new PortableChannel(limits, opts);
  }
}
