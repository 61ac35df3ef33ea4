// Errors with stable codes. errno values are mapped to their names exactly once, here.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

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
  /** sendFile's file ends before the region asked for (it was short, or shrank while being sent): the connection is
   * failed. (readFile returns the shorter result instead.) */
  SHORT_FILE: 'MP_ERR_SHORT_FILE',
  /**
   * A system call made outside the ring failed with an errno this platform has no name for (rare). Failures with a
   * named errno carry that name as their code, as node's do (`EADDRINUSE`, `EMFILE`, `ENOMEM`, …), with `errno`,
   * `syscall` and, for sockets, `address` and `port`. (The addon raises this code; errors.ts renames it.)
   */
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

/**
 * An operating error, shaped like node's system errors: a stable `code` — an errno name (`EADDRINUSE`,
 * `ECONNRESET`, …) or one of MpCode's `MP_ERR_*` — and, when it came from the kernel, the negative `errno`, the
 * `syscall` that failed and, for a socket, its `address` and `port`.
 */
export class MegapipeError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  readonly syscall?: string;
  readonly address?: string;
  readonly port?: number;
  constructor(code: string, message: string, errno?: number, detail?: { syscall?: string; address?: string; port?: number }) {
    super(message);
    this.name = 'MegapipeError';
    this.code = code;
    this.errno = errno;
    if (detail?.syscall !== undefined) this.syscall = detail.syscall;
    if (detail?.address !== undefined) this.address = detail.address;
    if (detail?.port !== undefined) this.port = detail.port;
  }
}

const systemErrors = getSystemErrorMap();

/**
 * A failed system call as node reports one: code `EADDRINUSE`, errno -98, syscall `bind`, and the message
 * `bind EADDRINUSE: address already in use 127.0.0.1:8080`. An errno without a name here: code MP_ERR_SYSCALL.
 */
export function systemError(errno: number, syscall: string, address?: string, port?: number): MegapipeError {
  const neg = errno < 0 ? errno : -errno;
  const known = systemErrors.get(neg);
  const code = known?.[0] ?? (errnoNames[-neg] !== undefined ? errnoNames[-neg]! : MpCode.SYSCALL);
  const desc = known?.[1] ?? `errno ${-neg}`;
  const where = address === undefined ? '' : port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  return new MegapipeError(code, `${syscall} ${code}: ${desc}${where}`, neg, { syscall, address, port });
}

/**
 * The addon's operating errors (code MP_ERR_SYSCALL, a negative `errno`, the failed step as `syscall`) as
 * systemError()s naming `address`/`port`; anything else (its TypeErrors and RangeErrors) unchanged.
 */
export function fromAddon(e: unknown, address?: string, port?: number): unknown {
  const x = e as { code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown } | null;
  if (x === null || typeof x !== 'object' || x.code !== MpCode.SYSCALL || typeof x.errno !== 'number') return e;
  const syscall = typeof x.syscall === 'string' ? x.syscall : String(x.message).split(':')[0]!;
  return systemError(x.errno, syscall, address, port);
}

/**
 * MP_ERR_SHORT_FILE: a read (a splice, a sendfile) of sendFile's region, which ends at `end`, found the file's end —
 * no byte at position `at` (at or past where the file now ends: reads in flight at once may find it further on).
 */
export function shortFileError(at: number, end: number): MegapipeError {
  return new MegapipeError(MpCode.SHORT_FILE, `sendFile: the file ends before the region asked for: no byte at position ${at} (the region ends at ${end})`);
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

/** A node:net system error (`listen EADDRINUSE …`) as a MegapipeError with the same code, errno, syscall and address. */
export function fromNode(e: NodeJS.ErrnoException, address?: string, port?: number): unknown {
  if (typeof e?.errno !== 'number' || typeof e.syscall !== 'string') return e;
  return systemError(e.errno, e.syscall, address, port);
}
