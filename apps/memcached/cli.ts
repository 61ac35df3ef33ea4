#!/usr/bin/env node
// megapipe-memcached: a memcached-compatible cache server on megapipe. Options follow memcached's.
import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startServer, type ServerOptions } from './server.js';
import { VERSION } from './app.js';
import { version } from '../../src/index.js';

const EX_USAGE = 64;

const USAGE = `megapipe-memcached ${version} (memcached ${VERSION}'s text, meta & binary protocols on megapipe)
-p, --port=<num>          TCP port to listen on (default: 11211)
-U, --udp-port=<num>      UDP port (only 0 is accepted: UDP is not supported)
-l, --listen=<addr>       interface to listen on (default: 127.0.0.1)
-t, --threads=<num>       number of worker threads (default: 4, at most the CPU count)
-m, --memory-limit=<num>  item memory in megabytes (default: 64)
-c, --conn-limit=<num>    max simultaneous connections (default: 1024)
-I, --max-item-size=<num> max item size, k/m suffixes (default: 1m, min: 1k, max: 1024m)
-f, --slab-growth-factor=<num> chunk size growth factor (default: 1.25)
-n, --slab-min-size=<num> min space for key+value+flags (default: 48)
-B, --protocol=<name>     protocol: auto (default: each connection by its first byte), ascii, binary
-F, --disable-flush-all   disable flush_all (text: CLIENT_ERROR; binary: Auth failure)
-A, --enable-shutdown     enable the ascii "shutdown" command (stops the server)
-o, --extended=<opts>     comma-separated extended options; supported: idle_timeout=<secs> (close connections
                          waiting for a command longer than this; 0: never, the default), track_sizes
                          ("stats sizes" reports the item size histogram)
-v, --verbose             verbose (print errors/warnings); -vv: also client commands and responses
-u, --user=<user>         accepted for compatibility, ignored
-h, --help                print this help and exit
-V, --version             print megapipe's version and exit`;

class UsageError extends Error {}

function parseSize(v: string, opt: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v);
  if (!m) throw new UsageError(`invalid value for ${opt}: ${v}`);
  const n = Number(m[1]);
  const unit = m[2].toLowerCase();
  return unit === 'k' ? n * 1024 : unit === 'm' ? n * 1024 * 1024 : unit === 'g' ? n * 1024 * 1024 * 1024 : n;
}

function parseIntArg(v: string | undefined, opt: string, min = 0): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new UsageError(`option ${opt} requires a number, got ${v ?? 'nothing'}`);
  const n = Number(v);
  if (n < min) throw new UsageError(`option ${opt} must be at least ${min}`);
  return n;
}

/** memcached's `-o key=value,…`; only the suboptions this server implements are accepted. */
function parseExtended(v: string, o: ServerOptions): void {
  for (const sub of v.split(',')) {
    if (sub === '') continue;
    const eq = sub.indexOf('=');
    const key = eq === -1 ? sub : sub.slice(0, eq), val = eq === -1 ? undefined : sub.slice(eq + 1);
    switch (key) {
      case 'idle_timeout':
        if (val === undefined || val === '') throw new UsageError('Missing numeric argument for idle_timeout');
        if (!/^\d+$/.test(val) || Number(val) > 0xffffffff) throw new UsageError(`Invalid numeric argument for idle_timeout: ${val}`);
        o.idleTimeout = Number(val);
        break;
      case 'track_sizes':
        o.trackSizes = true;
        break;
      default:
        throw new UsageError(`unsupported -o option: ${key} (supported: idle_timeout, track_sizes)`);
    }
  }
}

export function parseArgs(argv: string[]): ServerOptions & { help?: boolean; version?: boolean } {
  const o: ServerOptions & { help?: boolean; version?: boolean } = { verbosity: 0 };
  const long: Record<string, string> = {
    port: 'p', 'udp-port': 'U', listen: 'l', threads: 't', 'memory-limit': 'm', 'conn-limit': 'c',
    'max-item-size': 'I', 'slab-growth-factor': 'f', 'slab-min-size': 'n', verbose: 'v', user: 'u', help: 'h', version: 'V',
    extended: 'o', protocol: 'B', 'disable-flush-all': 'F', 'enable-shutdown': 'A',
  };
  const takesValue = new Set(['p', 'U', 'l', 't', 'm', 'c', 'I', 'f', 'n', 'u', 'o', 'B']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let flag: string;
    let value: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      if (!(name in long)) throw new UsageError(`unsupported option --${name}`);
      flag = long[name];
      if (eq !== -1) value = a.slice(eq + 1);
    } else if (a.startsWith('-') && a.length >= 2) {
      flag = a[1];
      if (/^-v+$/.test(a)) { o.verbosity = Math.min(2, (o.verbosity ?? 0) + a.length - 1); continue; }
      if (a.length > 2) value = a.slice(2);
    } else throw new UsageError(`unexpected argument: ${a}`);
    if (takesValue.has(flag) && value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`option -${flag} requires a value`);
    }
    switch (flag) {
      case 'p': o.port = parseIntArg(value, '-p'); if (o.port > 65535) throw new UsageError('port must be at most 65535'); break;
      case 'U': if (parseIntArg(value, '-U') !== 0) throw new UsageError('UDP is not supported: only -U 0 is accepted'); break;
      case 'l': o.host = value!; break;
      case 't': o.threads = parseIntArg(value, '-t', 1); break;
      case 'm': o.memoryMb = parseIntArg(value, '-m', 1); break;
      case 'c': o.maxConns = parseIntArg(value, '-c', 1); break;
      case 'I': o.itemSizeMax = parseSize(value!, '-I'); break;
      case 'f': { const f = Number(value); if (!(f > 1)) throw new UsageError('Factor must be greater than 1'); o.factor = f; break; }
      case 'n': o.chunkSize = parseIntArg(value, '-n', 1); break;
      case 'v': o.verbosity = Math.min(2, (o.verbosity ?? 0) + 1); break;
      case 'o': parseExtended(value!, o); break;
      case 'B':
        if (value !== 'auto' && value !== 'ascii' && value !== 'binary') throw new UsageError(`Invalid value for binding protocol: ${value}\n -- should be one of auto, binary, or ascii`);
        o.protocol = value;
        break;
      case 'F': o.flushEnabled = false; break;
      case 'A': o.shutdownEnabled = true; break;
      case 'u': break;
      case 'h': o.help = true; break;
      case 'V': o.version = true; break;
      default: throw new UsageError(`unsupported option -${flag}`);
    }
  }
  return o;
}

export async function main(argv: string[]): Promise<void> {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`megapipe-memcached: ${e.message}\nTry --help for the supported options.\n`);
    process.exit(EX_USAGE);
  }
  if (opts.help) { process.stdout.write(USAGE + '\n'); return; }
  if (opts.version) { process.stdout.write(`megapipe-memcached ${version}\n`); return; }
  if (opts.threads !== undefined && opts.threads > availableParallelism() && opts.verbosity) {
    process.stderr.write(`WARNING: -t ${opts.threads} capped at ${availableParallelism()} (CPU count)\n`);
  }
  let server;
  try {
    const { help: _h, version: _v, ...serverOptions } = opts;
    server = await startServer({ ...serverOptions, transport: 'channels' });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof RangeError) { process.stderr.write(`megapipe-memcached: ${err.message}\n`); process.exit(EX_USAGE); }
    process.stderr.write(`megapipe-memcached: failed to listen: ${err.code ?? ''} ${err.message}\n`);
    process.exit(71); // EX_OSERR
  }
  process.stdout.write(`listening on ${server.host}:${server.port}\n`);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    if (opts.verbosity) process.stderr.write(`Signal handled: ${sig}.\n`);
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    server.close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function isEntry(): boolean {
  try { return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url)); }
  catch { return false; }
}

if (isEntry()) main(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); });
