// megapipe/net's link to the channel: one channel per thread for node:net-style servers and sockets (or a channel
// given by serve()), one event handler on it that hands each event to the object named by its cookie, and errors
// shaped as node:net's.
import { getSystemErrorMap, inspect } from 'node:util';
import type { Channel } from '../channel.js';
import type { MpEvent } from '../event.js';
import { createChannel, requestedBackend, selectBackend } from '../backend.js';

/** The method a listener's or connection's cookie has: called with each of its events (the event object is reused). */
export const kMpEvent: unique symbol = Symbol('megapipe.net.event');

export interface Endpoint {
  [kMpEvent](ev: MpEvent): void;
}

const routed = new WeakSet<Channel>();

function dispatch(ev: MpEvent): void {
  const target = ev.cookie as Partial<Endpoint> | null | undefined;
  if (target != null && typeof target[kMpEvent] === 'function') target[kMpEvent]!(ev);
}

/** Makes `channel` hand its events to megapipe/net's endpoints (once per channel; other handlers keep working). */
export function route(channel: Channel): Channel {
  if (!routed.has(channel)) {
    routed.add(channel);
    channel.onEvent(dispatch);
  }
  return channel;
}

let own: Channel | undefined;

/**
 * This thread's channel for megapipe/net (created at first use). Reads are not paused while a connection's writes are
 * queued above the high-water mark (node:net keeps reading too: back-pressure is the application's, through write()'s
 * return value).
 */
export function threadChannel(): Channel {
  if (own === undefined || (own as unknown as { isClosed?: boolean }).isClosed === true) {
    own = route(createChannel({ pauseReadsAboveHighWater: false }));
  }
  return own;
}

/** Whether this thread's megapipe/net servers accept through io_uring (false: they stay on node:net). */
export function uringUsable(): boolean {
  try { return selectBackend(undefined) === 'uring'; } catch { return false; }
}

/** Whether staying on node:net was the 'auto' fallback, which the process warning (MP_ERR_BACKEND_UNAVAILABLE) reports. */
export function fallbackWarned(): boolean {
  try { return requestedBackend(undefined) === 'auto'; } catch { return false; }
}

/** One more (+1) or one fewer (-1) reason for `channel` to keep the event loop alive (ref/unref). */
export function loopUse(channel: Channel, delta: 1 | -1): void {
  (channel as unknown as { loopUse?(d: 1 | -1): void }).loopUse?.(delta);
}

const systemErrors = getSystemErrorMap();

/** The negative errno of an error code (`'ECONNRESET'` → -104), or undefined for megapipe's own codes. */
export function errnoOf(code: string): number | undefined {
  for (const [n, [name]] of systemErrors) if (name === code) return n;
  return undefined;
}

/**
 * A system error as node:net reports one: `read ECONNRESET`, `write EPIPE`, `connect ECONNREFUSED 127.0.0.1:9`, or
 * with its description, `listen EADDRINUSE: address already in use :::8080`; code, errno, syscall, address, port.
 */
export function netError(code: string, syscall: string, options: { errno?: number; address?: string; port?: number; describe?: boolean } = {}): NodeJS.ErrnoException {
  const errno = options.errno ?? errnoOf(code);
  const where = options.address === undefined ? '' : options.port !== undefined ? ` ${options.address}:${options.port}` : ` ${options.address}`;
  const desc = options.describe && errno !== undefined ? systemErrors.get(errno)?.[1] : undefined;
  const e = new Error(desc !== undefined ? `${syscall} ${code}: ${desc}${where}` : `${syscall} ${code}${where}`) as NodeJS.ErrnoException & { address?: string; port?: number };
  e.errno = errno;
  e.code = code;
  e.syscall = syscall;
  if (options.address !== undefined) e.address = options.address;
  if (options.port !== undefined) e.port = options.port;
  return e;
}

/** The system call node:net names for an error of a connection's reads and writes. */
export function syscallOf(code: string): string {
  return code === 'EPIPE' ? 'write' : code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'connect' : 'read';
}

// How node's argument errors show the value they refused: `null`, `type string ('10')`, `an instance of Object`
function received(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return `function ${value.name}`;
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : inspect(value, { depth: -1 });
  }
  const shown = inspect(value, { colors: false });
  return `type ${typeof value} (${shown.length > 28 ? `${shown.slice(0, 25)}...` : shown})`;
}

/** node's ERR_INVALID_ARG_TYPE: `The "msecs" argument must be of type number. Received type string ('10')`. */
function invalidArgType(name: string, type: string, value: unknown): TypeError & { code: string } {
  return Object.assign(new TypeError(`The "${name}" argument must be of type ${type}. Received ${received(value)}`), { code: 'ERR_INVALID_ARG_TYPE' });
}

/** node's ERR_OUT_OF_RANGE for a number: `The value of "msecs" is out of range. It must be … Received -1`. */
function outOfRange(name: string, range: string, value: number): RangeError & { code: string } {
  // (node writes an integer beyond 2^32 with separators every three characters from the end: -1_099_511_627_776)
  let shown = inspect(value);
  if (Number.isInteger(value) && Math.abs(value) > 2 ** 32) {
    const text = String(value), start = text[0] === '-' ? 1 : 0;
    let i = text.length, tail = '';
    for (; i >= start + 4; i -= 3) tail = `_${text.slice(i - 3, i)}${tail}`;
    shown = text.slice(0, i) + tail;
  }
  return Object.assign(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`), { code: 'ERR_OUT_OF_RANGE' });
}

/** `value` checked as node's validateFunction does: it, or a TypeError naming argument `name`. */
export function functionArg(name: string, value: unknown): (...args: unknown[]) => void {
  if (typeof value !== 'function') throw invalidArgType(name, 'function', value);
  return value as (...args: unknown[]) => void;
}

// node's largest timer: a longer timeout is cut to it
const TIMEOUT_MAX_MS = 2 ** 31 - 1;

/**
 * A socket timeout's duration checked as node:net's (timers' getTimerDuration): not a number, a TypeError; negative or
 * not finite, a RangeError; above 2^31 - 1 ms, node's TimeoutOverflowWarning and 2^31 - 1. A fraction stays.
 */
export function timerDuration(msecs: unknown): number {
  if (typeof msecs !== 'number') throw invalidArgType('msecs', 'number', msecs);
  if (msecs < 0 || !Number.isFinite(msecs)) throw outOfRange('msecs', 'a non-negative finite number', msecs);
  if (msecs > TIMEOUT_MAX_MS) {
    process.emitWarning(`${msecs} does not fit into a 32-bit signed integer.\nTimer duration was truncated to ${TIMEOUT_MAX_MS}.`, 'TimeoutOverflowWarning');
    return TIMEOUT_MAX_MS;
  }
  return msecs;
}

/**
 * node:net's error for a string written with encoding 'buffer': Writable lets it through, node's handle refuses it
 * (writeBuffer), and the call that handed it over throws this.
 */
export function stringAsBuffer(): TypeError & { code: string } {
  return Object.assign(new TypeError('Second argument must be a buffer'), { code: 'ERR_INVALID_ARG_TYPE' });
}

export interface TcpConnectOptions {
  port: number;
  host?: string;
  localAddress?: string;
  localPort?: number;
  /** setTimeout's, when truthy: read by connect() (net.connect) only, as node's (socket.connect() ignores it). */
  timeout?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** How a host name is resolved, as node's: dns.lookup's options, or a function with dns.lookup's signature. */
  family?: number;
  hints?: number;
  lookup?: (hostname: string, options: { family: number; hints: number }, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) => void;
}

/** connect()'s arguments, `(port[, host][, cb])` or `(options[, cb])`, checked as node:net's (TCP only). */
export function connectArgs(args: unknown[]): { options: TcpConnectOptions; cb: (() => void) | undefined } {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() as () => void : undefined;
  const [a, b] = args;
  let options: TcpConnectOptions;
  if (a !== null && typeof a === 'object') options = { ...(a as TcpConnectOptions) };
  else options = { port: Number(a), host: typeof b === 'string' ? b : undefined };
  if ((options as { path?: unknown }).path !== undefined) throw new TypeError('megapipe/net connects over TCP only (no IPC path)');
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`Port should be >= 0 and < 65536. Received ${String(options.port)}.`);
  options.port = port;
  // checked at the call, as node's (else a later 'error', or a value silently ignored)
  const lp = options.localPort as unknown;
  if (lp !== undefined && lp !== null && typeof lp !== 'number') {
    throw Object.assign(new TypeError(`The "options.localPort" property must be of type number. Received ${typeof lp}`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  if (typeof lp === 'number' && (!Number.isInteger(lp) || lp < 0 || lp > 65535)) {
    throw Object.assign(new RangeError(`options.localPort should be >= 0 and < 65536. Received ${String(lp)}.`), { code: 'ERR_SOCKET_BAD_PORT' });
  }
  if (options.lookup !== undefined && typeof options.lookup !== 'function') {
    throw Object.assign(new TypeError(`The "options.lookup" property must be of type function. Received ${typeof options.lookup}`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  // node's spellings of a family: 4, 6, 0 (either), 'IPv4', 'IPv6'
  const fam = options.family as unknown;
  if (fam !== undefined && fam !== null) {
    const f = fam === 'IPv4' ? 4 : fam === 'IPv6' ? 6 : fam;
    if (f !== 0 && f !== 4 && f !== 6) throw Object.assign(new TypeError(`The property 'options.family' must be one of: 0, 4, 6. Received ${String(fam)}`), { code: 'ERR_INVALID_ARG_VALUE' });
    options.family = f;
  }
  return { options, cb };
}
