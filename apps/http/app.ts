// Setting up megapipe-http: `createHttpApp(options)` validates the options, fills in their defaults, starts the
// server's one deadline timer and returns the session factory to hand to serveNet / serve(), with the server's
// counters and its graceful shutdown.

import { MpCode, checkOptions, optionKeys, type Conn, type SessionFactory } from '../../src/index.js';
import { HttpConnection } from './connection.js';
import { startDeadlineTimer } from './deadlines.js';
import type { Handler } from './handlers.js';
import { DEFAULT_LIMITS, type ParserLimits } from './parser.js';
import type { HttpRequest } from './request.js';

export interface HttpServerOptions extends Partial<ParserLimits> {
  /** Handlers tried in order; the default answer is 404. */
  handler?: Handler | readonly Handler[];
  /** `Server` header value (default "megapipe-http"). */
  serverName?: string;
  /** Close a keep-alive connection idle this long, ms (default 5000). */
  keepAliveTimeout?: number;
  /** Deadline for a complete request header block from its first byte (and for the first request after accept),
   * ms (default 10000): slowloris protection — not reset by each byte received. */
  headerTimeout?: number;
  /**
   * Request body deadlines, ms (default 30000): 408 and close when a body makes no progress this long, and when the
   * whole body has not arrived within this long plus one second per `bodyMinRate` bytes received. Both count from
   * when the server starts reading the body, and neither counts time the server holds reading back (the body buffer
   * full, `100 Continue` not yet sent). The handler's body read fails with HttpError(408).
   */
  bodyTimeout?: number;
  /**
   * The slowest whole-body rate allowed, bytes/s (default 500, Apache mod_reqtimeout's MinRate): a client dripping
   * its body is cut off after about `bodyTimeout`, while an upload at least this fast is never cut off, whatever its
   * size. 0: the whole body must arrive within `bodyTimeout` (as node:http's requestTimeout). RangeError when
   * negative or not finite.
   */
  bodyMinRate?: number;
  /** Destroy when output stays above the high-water mark this long, ms (default 30000). */
  sendTimeout?: number;
  /** Simultaneous connections per server (worker); beyond it, 503 and close (default 10000). */
  maxConnections?: number;
  /** Requests parsed ahead of their responses per connection before reading pauses (default 32). */
  maxPipeline?: number;
  /** Close a connection after this many requests (default 0: unlimited). */
  maxRequestsPerConnection?: number;
  /** Unread request body buffered per request before reading pauses, bytes (default 256 KiB). */
  bodyBufferSize?: number;
  /** Period of the deadline timer, ms (default: a quarter of the smallest timeout, within 10..1000). */
  timerInterval?: number;
  /** Called with errors thrown by handlers (default: printed to stderr). */
  onError?: (err: unknown, req: HttpRequest | null) => void;
}

/** How many connections each deadline has cut off since the server started. */
export interface HttpTimeoutCounts {
  /** header block incomplete (headerTimeout), including connections that sent nothing */
  readonly header: number;
  /** request body stalled or slower than bodyMinRate (bodyTimeout) */
  readonly body: number;
  /** keep-alive connection idle (keepAliveTimeout) */
  readonly idle: number;
  /** output above the high-water mark, the peer not reading (sendTimeout): destroyed */
  readonly send: number;
  /** output not flushed after the connection was ended: destroyed */
  readonly linger: number;
}

export interface HttpApp {
  /** The session factory to pass to serveNet / serve. */
  readonly factory: SessionFactory;
  /** Open (counted) connections. */
  readonly connections: number;
  /** Deadlines that fired so far, by kind (a snapshot). */
  readonly timeouts: HttpTimeoutCounts;
  readonly draining: boolean;
  /**
   * Graceful shutdown: idle connections close at once, in-flight requests finish (their responses carry
   * `Connection: close`), new connections are refused; whatever is left after `deadlineMs` is destroyed.
   * Resolves when no connection is left.
   */
  shutdown(deadlineMs?: number): Promise<void>;
  /** Stop the deadline timer (after shutdown). */
  close(): void;
}

/** One server's resolved options and state, shared by its connections. */
export interface AppState {
  readonly limits: ParserLimits;
  readonly handlers: readonly Handler[];
  readonly serverName: string;
  readonly keepAliveTimeout: number;
  readonly headerTimeout: number;
  readonly bodyTimeout: number;
  readonly bodyMinRate: number;
  readonly sendTimeout: number;
  readonly maxConnections: number;
  readonly maxPipeline: number;
  readonly maxRequests: number;
  readonly bodyBufferSize: number;
  readonly onError: (err: unknown, req: HttpRequest | null) => void;
  /** open connections, counted or not (a rejected one is here until its 503 is sent) */
  readonly conns: Set<HttpConnection>;
  readonly timeouts: { -readonly [K in keyof HttpTimeoutCounts]: number };
  /** counted connections (maxConnections) */
  active: number;
  draining: boolean;
  /** called when the last connection closes (shutdown waits for it) */
  onEmpty: (() => void) | null;
}

const HTTP_OPTIONS = optionKeys<HttpServerOptions>({
  handler: true, serverName: true, keepAliveTimeout: true, headerTimeout: true, bodyTimeout: true, bodyMinRate: true,
  sendTimeout: true, maxConnections: true, maxPipeline: true, maxRequestsPerConnection: true, bodyBufferSize: true,
  timerInterval: true, onError: true, maxHeaderSize: true, maxUriLength: true, maxHeaders: true, maxBodySize: true,
  maxTrailerSize: true, extraMethods: true,
});

/** Options that are integers and their least value: timeouts (ms), sizes (bytes) and counts. */
const INTEGER_OPTIONS: Readonly<Record<string, number>> = {
  keepAliveTimeout: 1, headerTimeout: 1, bodyTimeout: 1, sendTimeout: 1, timerInterval: 1, maxConnections: 1,
  maxPipeline: 1, maxRequestsPerConnection: 0, bodyBufferSize: 1, maxHeaderSize: 1, maxUriLength: 1, maxHeaders: 1,
  maxBodySize: 0, maxTrailerSize: 0,
};

function optionError(Kind: typeof TypeError | typeof RangeError, message: string): Error {
  return Object.assign(new Kind(message), { code: Kind === TypeError ? MpCode.INVALID_ARG : MpCode.OUT_OF_RANGE });
}

/**
 * Checks createHttpApp's options (`what` names them in errors): unknown keys are TypeErrors naming the key; a wrong
 * type is a TypeError, a value out of range a RangeError, each naming the option (`maxBodySize: '1mb'` is refused, not
 * read as "no limit").
 */
export function checkHttpOptions(options: HttpServerOptions | undefined, what = 'createHttpApp options'): HttpServerOptions {
  const o = checkOptions(options, HTTP_OPTIONS, what) as Record<string, unknown>;
  for (const [k, min] of Object.entries(INTEGER_OPTIONS)) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number') throw optionError(TypeError, `${k} must be an integer >= ${min} (got ${typeof v} ${JSON.stringify(v)})`);
    if (!Number.isSafeInteger(v) || v < min) throw optionError(RangeError, `${k} must be an integer >= ${min} (got ${v})`);
  }
  const rate = o.bodyMinRate;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate >= 0 && Number.isFinite(rate)))) {
    throw optionError(typeof rate === 'number' ? RangeError : TypeError, `bodyMinRate must be a finite number of bytes per second >= 0 (got ${String(rate)})`);
  }
  const h = o.handler;
  if (h !== undefined && typeof h !== 'function' && !(Array.isArray(h) && h.every((f) => typeof f === 'function'))) {
    throw optionError(TypeError, 'handler must be a function (req, res) or an array of them (startServer takes a module path: handlerModule)');
  }
  if (o.serverName !== undefined && (typeof o.serverName !== 'string' || /[\r\n]/.test(o.serverName))) throw optionError(TypeError, 'serverName must be a string without CR or LF');
  if (o.onError !== undefined && typeof o.onError !== 'function') throw optionError(TypeError, 'onError must be a function');
  if (o.extraMethods !== undefined && !(o.extraMethods instanceof Set && [...o.extraMethods].every((m) => typeof m === 'string'))) throw optionError(TypeError, 'extraMethods must be a Set of method names');
  return o as HttpServerOptions;
}

/**
 * The server for `options` (see HttpServerOptions), its deadline timer started. Throws on an unknown option, a wrong
 * type or a value out of range (see checkHttpOptions).
 */
export function createHttpApp(options: HttpServerOptions = {}): HttpApp {
  checkHttpOptions(options);
  const limits: ParserLimits = {
    maxHeaderSize: options.maxHeaderSize ?? DEFAULT_LIMITS.maxHeaderSize,
    maxUriLength: options.maxUriLength ?? DEFAULT_LIMITS.maxUriLength,
    maxHeaders: options.maxHeaders ?? DEFAULT_LIMITS.maxHeaders,
    maxBodySize: options.maxBodySize ?? DEFAULT_LIMITS.maxBodySize,
    maxTrailerSize: options.maxTrailerSize ?? DEFAULT_LIMITS.maxTrailerSize,
    extraMethods: options.extraMethods,
  };
  const h = options.handler;
  const app: AppState = {
    limits,
    handlers: h === undefined ? [] : typeof h === 'function' ? [h] : [...h],
    serverName: options.serverName ?? 'megapipe-http',
    keepAliveTimeout: options.keepAliveTimeout ?? 5000,
    headerTimeout: options.headerTimeout ?? 10_000,
    bodyTimeout: options.bodyTimeout ?? 30_000,
    bodyMinRate: options.bodyMinRate ?? 500,
    sendTimeout: options.sendTimeout ?? 30_000,
    maxConnections: options.maxConnections ?? 10_000,
    maxPipeline: options.maxPipeline ?? 32,
    maxRequests: options.maxRequestsPerConnection ?? 0,
    bodyBufferSize: options.bodyBufferSize ?? 256 * 1024,
    onError: options.onError ?? ((err) => console.error('megapipe-http: handler error:', err)),
    conns: new Set(),
    timeouts: { header: 0, body: 0, idle: 0, send: 0, linger: 0 },
    active: 0,
    draining: false,
    onEmpty: null,
  };
  const smallest = Math.min(app.keepAliveTimeout, app.headerTimeout, app.bodyTimeout, app.sendTimeout);
  const timer = startDeadlineTimer(app, options.timerInterval ?? Math.min(1000, Math.max(10, Math.floor(smallest / 4))));

  const factory: SessionFactory = (conn: Conn) =>
    new HttpConnection(app, conn, app.draining || app.active >= app.maxConnections);

  return {
    factory,
    get connections() {
      return app.active;
    },
    get timeouts() {
      return { ...app.timeouts };
    },
    get draining() {
      return app.draining;
    },
    shutdown(deadlineMs = 10_000): Promise<void> {
      app.draining = true;
      for (const c of [...app.conns]) c.drainNow();
      if (app.conns.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          for (const c of [...app.conns]) c.destroy();
        }, deadlineMs);
        app.onEmpty = () => {
          clearTimeout(t);
          app.onEmpty = null;
          resolve();
        };
      });
    },
    close() {
      clearInterval(timer);
    },
  };
}
