// Backend selection, in one place: io_uring when the kernel lets us, node:net otherwise. Reported once.
import { native, nativeLoadError } from './native.js';
import { MegapipeError, MpCode, argError, errnoCode } from './errors.js';

export type BackendName = 'auto' | 'uring' | 'portable';

let reported = false;
let cached: { ok: boolean; reason: string } | undefined;

/** Whether io_uring can back a channel here, and if not, why (probed once per thread). */
export function uringAvailability(): { ok: boolean; reason: string } {
  if (cached) return cached;
  if (process.platform !== 'linux') return (cached = { ok: false, reason: `platform ${process.platform} has no io_uring` });
  if (!native) return (cached = { ok: false, reason: `native addon unavailable: ${nativeLoadError}` });
  const p = native.probe();
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
  return (cached = { ok: true, reason: `io_uring on Linux ${p.kernel}${p.deferTaskrun ? ' (DEFER_TASKRUN)' : ''}` });
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
