// Errors with stable codes. errno values are mapped to their names exactly once, here.
import { constants } from 'node:os';

/** Codes megapipe adds to the errno names (`ECONNRESET`, `EPIPE`, …) that operating errors carry. */
export const MpCode = {
  /** An operation on a handle that is closing or closed. */
  CLOSED: 'MP_ERR_CLOSED',
  /** A handle number that does not name an open handle of this channel. */
  BAD_HANDLE: 'MP_ERR_BAD_HANDLE',
  /** The channel's direct-descriptor table is full; new connections fall back to regular fds. */
  TABLE_FULL: 'MP_ERR_TABLE_FULL',
  /** A configured limit was reached (handles, connects in flight, queued events). */
  LIMIT: 'MP_ERR_LIMIT',
  /** The kernel or backend lacks the feature. */
  UNSUPPORTED: 'MP_ERR_UNSUPPORTED',
  /** io_uring cannot be used here (reported once; the portable backend is used instead). */
  BACKEND_UNAVAILABLE: 'MP_ERR_BACKEND_UNAVAILABLE',
  /** A call made where it is not valid (holdBuffer() outside the handler of a read event). */
  STATE: 'MP_ERR_STATE',
  /** A file ended before the bytes sendFile/readFile were asked for (it shrank): the connection is aborted. */
  SHORT_FILE: 'MP_ERR_SHORT_FILE',
  /** A system call made outside the ring failed (socket, bind, listen, io_uring_setup…). */
  SYSCALL: 'MP_ERR_SYSCALL',
  /** An argument of the wrong type (a TypeError carries it). */
  INVALID_ARG: 'MP_ERR_INVALID_ARG',
  /** An argument out of its range (a RangeError carries it). */
  OUT_OF_RANGE: 'MP_ERR_OUT_OF_RANGE',
  /** A Node-API call of the addon failed (out of memory, or a bug): the operation did not happen. */
  NAPI: 'MP_ERR_NAPI',
} as const;
export type MpCodeValue = (typeof MpCode)[keyof typeof MpCode];

const errnoNames: string[] = [];
for (const [name, num] of Object.entries(constants.errno)) if (errnoNames[num] === undefined) errnoNames[num] = name;
// Linux values the table may lack on other platforms, and the io_uring-specific one.
errnoNames[125] ??= 'ECANCELED';

/** The stable name of a (positive or negative) errno: `-104` → `'ECONNRESET'`. */
export function errnoCode(errno: number): string {
  const n = errno < 0 ? -errno : errno;
  return errnoNames[n] ?? `ERRNO_${n}`;
}

/** An operating error: carries a stable `code` and, when it came from the kernel, the negative `errno`. */
export class MegapipeError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  constructor(code: string, message: string, errno?: number) {
    super(message);
    this.name = 'MegapipeError';
    this.code = code;
    this.errno = errno;
  }
}

/** An error for a negative errno result of an operation (`what` names the operation). */
export function errnoError(errno: number, what: string): MegapipeError {
  const code = errnoCode(errno);
  return new MegapipeError(code, `${what}: ${code}`, errno < 0 ? errno : -errno);
}

export function argError(name: string, expected: string, got: unknown): TypeError {
  const e = new TypeError(`${name} must be ${expected} (got ${describe(got)})`) as TypeError & { code: string };
  e.code = MpCode.INVALID_ARG;
  return e;
}

export function rangeError(name: string, range: string, got: unknown): RangeError {
  const e = new RangeError(`${name} must be ${range} (got ${describe(got)})`) as RangeError & { code: string };
  e.code = MpCode.OUT_OF_RANGE;
  return e;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v == null) return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
}
