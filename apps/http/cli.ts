#!/usr/bin/env node
// megapipe-http: serve a directory (and/or a handler module) over HTTP/1.1.
//
//   megapipe-http --root DIR --port P [--host H] [--workers N] [--handler MODULE]
//
// Prints "listening on HOST:PORT" once ready. SIGTERM/SIGINT: graceful shutdown (stop taking requests, finish
// in-flight responses within --shutdown-timeout ms), exit 0.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MpCode, checkOptions, optionKeys, serve, serveNet, version, type Limits } from '../../src/index.js';
import { checkHttpOptions, type HttpServerOptions } from './app.js';
import { checkStaticOptions, checkStaticRoot, type StaticOptions } from './static.js';
import setup, { type HttpWorkerData } from './worker.js';

export interface StartOptions {
  /** Serve static files from this directory (it must exist: checked at start). */
  root?: string;
  /**
   * A module path whose default export is the request handler (see HttpWorkerData.handlerModule), tried before the
   * static files. A module, not a function: every worker thread loads it. (createHttpApp takes the function itself
   * as `handler`; startServer refuses `handler`, so that one name keeps one meaning.)
   */
  handlerModule?: string;
  host?: string;
  /** 0: any free port */
  port?: number;
  /** Worker threads, each with its own channel (default 1). */
  workers?: number;
  /**
   * "serve": the library's serve() — worker threads, one io_uring (or portable) channel each (default).
   * "net": in-process on node:net (serveNet), one worker.
   */
  transport?: 'serve' | 'net';
  options?: Omit<HttpServerOptions, 'handler' | 'onError'>;
  static?: StaticOptions;
  /** Channel limits for the "serve" transport, over HTTP_CHANNEL_LIMITS. */
  limits?: Partial<Limits>;
  /** TCP_DEFER_ACCEPT seconds for the "serve" transport's listener (default HTTP_DEFER_ACCEPT; 0: off). */
  deferAccept?: number;
}

/**
 * The listener of the "serve" transport queues a connection for accept only once its request has begun to arrive
 * (TCP_DEFER_ACCEPT; HTTP clients speak first): the accept and the first receive then come in one wake-up of the
 * worker instead of two, which is most of a short connection's event-loop work. A client silent for about this many
 * seconds is accepted anyway (and then meets the header timeout).
 */
export const HTTP_DEFER_ACCEPT = 1;

/**
 * megapipe-http's channel limits (over the library's defaults): HTTP responses are larger than RPC messages, so send
 * memory comes in 64 KiB chunks (a send system call moves up to that much; a 200 KiB file goes out in 4 sends, not
 * 13) and a connection may queue 256 KiB before its writer is told to wait.
 */
export const HTTP_CHANNEL_LIMITS: Readonly<Partial<Limits>> = Object.freeze({ sendChunkBytes: 64 * 1024, highWaterMark: 256 * 1024 });

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  readonly workers: number;
  /** Graceful shutdown; resolves once every connection is closed and the listener is gone. */
  close(deadlineMs?: number): Promise<void>;
}

const WORKER_MODULE = new URL('./worker.js', import.meta.url);

const START_OPTIONS = optionKeys<StartOptions>({
  root: true, handlerModule: true, host: true, port: true, workers: true, transport: true, options: true, static: true,
  limits: true, deferAccept: true,
});

/** Checks startServer's options before any worker starts: each error names the option (a missing root, too). */
export function checkStartOptions(opts: StartOptions): void {
  if (opts !== null && typeof opts === 'object' && 'handler' in opts && (opts as { handler?: unknown }).handler !== undefined) {
    throw Object.assign(new TypeError("startServer: unknown option 'handler': give handlerModule, a module path whose default export is the handler (a function runs in createHttpApp({handler}))"), { code: MpCode.INVALID_ARG });
  }
  checkOptions(opts, START_OPTIONS, 'startServer options');
  if (opts.handlerModule !== undefined && (typeof opts.handlerModule !== 'string' || opts.handlerModule === '')) {
    throw Object.assign(new TypeError('handlerModule must be a module path or package name'), { code: MpCode.INVALID_ARG });
  }
  if (opts.transport !== undefined && opts.transport !== 'serve' && opts.transport !== 'net') {
    throw Object.assign(new TypeError(`transport must be "serve" or "net" (got ${JSON.stringify(opts.transport)})`), { code: MpCode.INVALID_ARG });
  }
  if (opts.options !== undefined) {
    const o = opts.options as Record<string, unknown>;
    for (const k of ['handler', 'onError']) {
      if (o[k] !== undefined) throw Object.assign(new TypeError(`startServer: options.${k} is not accepted (workers get their options by structured clone: no functions; give handlerModule)`), { code: MpCode.INVALID_ARG });
    }
    checkHttpOptions(opts.options, 'startServer options.options');
  }
  if (opts.static !== undefined) checkStaticOptions(opts.static);
  if (opts.root !== undefined) checkStaticRoot(opts.root);
}

/**
 * Start megapipe-http: N workers under serve(), or in-process on node:net. Options are checked first (an unknown
 * key, a wrong type, a root that is not a directory throw before anything starts).
 */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  checkStartOptions(opts);
  const workerData: HttpWorkerData = { root: opts.root, handlerModule: opts.handlerModule, options: opts.options, static: opts.static };
  const host = opts.host ?? '127.0.0.1';
  // the app enforces its own connection limit (503); the transport's hard limit only as a backstop above it
  const hardLimit = (opts.options?.maxConnections ?? 10_000) + 1024;
  if ((opts.transport ?? 'serve') === 'serve') {
    const limits = { ...HTTP_CHANNEL_LIMITS, ...opts.limits };
    const server = await serve({ module: WORKER_MODULE, workers: opts.workers ?? 1, host, port: opts.port ?? 0, workerData, limits, deferAccept: opts.deferAccept ?? HTTP_DEFER_ACCEPT });
    let closing: Promise<void> | null = null;
    return {
      host: server.host,
      port: server.port,
      workers: server.workers,
      close(deadlineMs = 10_000) {
        // each worker stops accepting, then every connection's session.shutdown() finishes what is in flight
        return (closing ??= server.close(deadlineMs).then(() => undefined));
      },
    };
  }
  const factory = await setup({ worker: 0, workers: 1, workerData });
  const app = factory.app;
  const handle = await serveNet(factory, { host, port: opts.port ?? 0, maxConnections: hardLimit });
  let closing: Promise<void> | null = null;
  return {
    host,
    port: handle.port,
    workers: 1,
    close(deadlineMs = 10_000) {
      return (closing ??= (async () => {
        await handle.close(deadlineMs); // stops accepting; session.shutdown() drains each connection
        app.close();
      })());
    },
  };
}

const USAGE = `usage: megapipe-http --root DIR --port P [--host H] [--workers N] [--handler MODULE]
  --root DIR              serve static files from DIR
  --handler MODULE        request handler module (default export (req, res) => ...), tried before the files
  --port P                port (0: any free port; default 8080)
  --host H                address to bind (default 127.0.0.1)
  --workers N             worker threads, one channel each (default 1)
  --net                   serve in-process on node:net instead (one worker)
  --keepalive-timeout MS  idle keep-alive connections close after MS (default 5000)
  --header-timeout MS     deadline for a complete request header block (default 10000)
  --max-connections N     connections beyond N get 503 (default 10000)
  --max-body BYTES        request body limit (default 1048576)
  --shutdown-timeout MS   graceful shutdown deadline (default 10000)
  --send-chunk BYTES      channel send-memory unit: the most one send moves (default 65536)
  --high-water BYTES      queued output per connection before the writer waits (default 262144)
  --splice-pipes N        files sent with splice at once, page cache to socket without a copy (io_uring; default 16,
                          0: read files into send memory)
  --splice-min BYTES      the smallest file body sent with splice (default 131072)
  --sendfile-min BYTES    the smallest file body sent with sendfile(2) when it is all in the page cache (io_uring;
                          default 131072, 0: never)
  --nocopy-min BYTES      the shortest cached response sent from the cache's memory itself, not copied into send
                          memory (io_uring; default 8192)
  --cache-file-max BYTES  files up to this size are kept in memory (default 1048576; 0: none)
  --cache-max BYTES       total memory of the file cache (default 33554432)
  --open-files N          larger files kept open between requests (default 256; 0: open per request)
  --defer-accept S        accept a connection once its request begins to arrive, or after S seconds (TCP_DEFER_ACCEPT;
                          default 1, 0: at once)
  -V, --version           print megapipe's version and exit`;

function fail(msg: string): never {
  process.stderr.write(`megapipe-http: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function int(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined || !/^\d+$/.test(v)) fail(`${name} needs an integer`);
  const n = Number(v);
  if (n < min || n > max) fail(`${name} must be within ${min}..${max}`);
  return n;
}

export function parseArgs(argv: readonly string[]): StartOptions & { shutdownTimeout: number } {
  const o: StartOptions & { shutdownTimeout: number } = { port: 8080, host: '127.0.0.1', workers: 1, options: {}, shutdownTimeout: 10_000, limits: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const val = (): string | undefined => (a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--root': o.root = val() ?? fail('--root needs a directory'); break;
      case '--handler': o.handlerModule = val() ?? fail('--handler needs a module'); break;
      case '--port': o.port = int('--port', val(), 0, 65535); break;
      case '--host': o.host = val() ?? fail('--host needs an address'); break;
      case '--workers': o.workers = int('--workers', val(), 1, 256); break;
      case '--net': o.transport = 'net'; break;
      case '--keepalive-timeout': o.options!.keepAliveTimeout = int(flag, val(), 1, 86_400_000); break;
      case '--header-timeout': o.options!.headerTimeout = int(flag, val(), 1, 86_400_000); break;
      case '--max-connections': o.options!.maxConnections = int(flag, val(), 1, 10_000_000); break;
      case '--max-body': o.options!.maxBodySize = int(flag, val(), 0, Number.MAX_SAFE_INTEGER); break;
      case '--shutdown-timeout': o.shutdownTimeout = int(flag, val(), 0, 86_400_000); break;
      case '--send-chunk': o.limits!.sendChunkBytes = int(flag, val(), 1024, 1 << 24); break;
      case '--high-water': o.limits!.highWaterMark = int(flag, val(), 1024, 2 ** 31 - 1); break;
      case '--splice-pipes': o.limits!.splicePipes = int(flag, val(), 0, 4096); break;
      case '--splice-min': o.limits!.spliceMinBytes = int(flag, val(), 0, 2 ** 31 - 1); break;
      case '--sendfile-min': o.limits!.sendfileMinBytes = int(flag, val(), 0, 2 ** 31 - 1); break;
      case '--nocopy-min': o.limits!.noCopyMinBytes = int(flag, val(), 0, 2 ** 31 - 1); break;
      case '--cache-file-max': (o.static ??= {}).maxCachedFileSize = int(flag, val(), 0, 2 ** 30); break;
      case '--cache-max': (o.static ??= {}).maxCacheSize = int(flag, val(), 0, Number.MAX_SAFE_INTEGER); break;
      case '--open-files': (o.static ??= {}).maxOpenFiles = int(flag, val(), 0, 1_000_000); break;
      case '--defer-accept': o.deferAccept = int(flag, val(), 0, 3600); break;
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0);
      // falls through (unreachable)
      case '-V': case '--version': process.stdout.write(`megapipe-http ${version}\n`); process.exit(0);
      // falls through (unreachable)
      default: fail(`unknown argument ${a}`);
    }
  }
  if (o.root === undefined && o.handlerModule === undefined) fail('give --root and/or --handler');
  return o;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.transport === 'net' && (o.workers ?? 1) > 1) {
    process.stderr.write('megapipe-http: --net runs one worker in-process; ignoring --workers\n');
  }
  const { shutdownTimeout: _, ...start } = o;
  const server = await startServer(start);
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) {
      process.stderr.write(`megapipe-http: ${sig} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    server.close(o.shutdownTimeout).then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`megapipe-http: shutdown failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  // handlers first: whoever reads the line below may signal at once
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.stdout.write(`listening on ${server.host}:${server.port}\n`);
}

function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((e: unknown) => {
    process.stderr.write(`megapipe-http: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
