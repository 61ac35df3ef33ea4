// Static files like nginx: a root, index.html, MIME types, ETag/Last-Modified with conditional requests, single
// byte ranges, no escape from the root (dot-dot in any encoding, NUL, backslashes, symlinks resolving outside), and
// an in-memory cache of small hot files with their prepared response headers, revalidated by a cheap stat at most
// once per interval per entry. A cache hit is answered synchronously, without touching the file system.

import { statSync } from 'node:fs';
import * as nodePath from 'node:path';
import { MegapipeError, MpCode, checkOptions, optionKeys, timeNow } from '../../src/index.js';
import { formatHttpDate, parseHttpDate } from './date.js';
import * as files from './files.js';
import type { FileInfo, OpenFile } from './files.js';
import { mimeType } from './mime.js';
import type { HttpRequest } from './request.js';
import { isFieldValue, setFileSender, type FileOptions, type HttpResponse, type WireSlot } from './response.js';
import type { Handler } from './handlers.js';
import { HttpError } from './status.js';

export interface StaticOptions {
  /** Index file served for a directory (default "index.html"; false: none → 403). */
  index?: string | false;
  /** Dot-files (any path segment starting with ".", except "/.well-known"): "deny" (404, default) or "allow". */
  dotfiles?: 'deny' | 'allow';
  /** Pass requests this handler cannot answer (not found, other methods) to the next handler (default false). */
  fallthrough?: boolean;
  /** Files up to this size are cached in memory (default 1 MiB; 0 disables the content cache). */
  maxCachedFileSize?: number;
  /** Bound on cached content, bytes (default 32 MiB): bodies and the prepared responses kept with them. */
  maxCacheSize?: number;
  /** Bound on cached paths (default 10,000). */
  maxCacheEntries?: number;
  /** A cached entry is checked against the file (stat) at most this often, ms (default 1000). */
  revalidateInterval?: number;
  /**
   * Files above maxCachedFileSize kept open for the requests that send them, like nginx's open_file_cache (default
   * 256; 0: open and close per request). A descriptor is closed when revalidation finds its file changed or gone.
   */
  maxOpenFiles?: number;
  /** Extra or overriding extension → Content-Type mappings. */
  mimeTypes?: Readonly<Record<string, string>>;
  /** Cache-Control value to send with files (default none). */
  cacheControl?: string;
}

/** A file's representation metadata and prepared header lines. */
interface Entity {
  info: FileInfo;
  etag: string;
  lastModified: string;
  /** mtime truncated to the second (HTTP-date precision) */
  mtimeSec: number;
  /** Content-Type, Last-Modified, ETag, Accept-Ranges[, Cache-Control] lines */
  headers: string;
  /** ETag, Last-Modified[, Cache-Control] lines (for 304) */
  validators: string;
}

interface Entry extends Entity {
  /** real path of the file */
  file: string;
  /** the lexical path (root + decoded request path [+ index]) whose realpath must still be `file` */
  lexical: string;
  /** content, for small files */
  body: Buffer | null;
  /** the complete keep-alive 200 response, for bodies up to WIRE_MAX (null: none) */
  slot: WireSlot | null;
  checkedAt: number;
  stale: boolean;
  revalidating: Promise<boolean> | null;
  /** the file kept open (files without a cached body), shared by the requests sending it */
  open: SharedFile | null;
}

/** An open file shared by requests; closed once retired (its entry forgotten) and no request uses it. */
interface SharedFile { file: OpenFile; users: number; retired: boolean }

function makeEntity(info: FileInfo, name: string, opts: StaticOptions): Entity {
  const etag = `"${Math.floor(info.mtimeMs * 1000).toString(16)}-${info.size.toString(16)}"`;
  const lastModified = formatHttpDate(info.mtimeMs);
  const cc = opts.cacheControl ? `Cache-Control: ${opts.cacheControl}\r\n` : '';
  const validators = `Last-Modified: ${lastModified}\r\nETag: ${etag}\r\n${cc}`;
  return {
    info,
    etag,
    lastModified,
    mtimeSec: Math.floor(info.mtimeMs / 1000) * 1000,
    headers: `Content-Type: ${mimeType(name, opts.mimeTypes)}\r\n${validators}Accept-Ranges: bytes\r\n`,
    validators,
  };
}

function sameFile(a: FileInfo, b: FileInfo): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev && a.isFile === b.isFile;
}

// ---- conditional requests and ranges (RFC 9110 §13, §14) ----

function etagListMatches(list: string, etag: string, weak: boolean): boolean {
  const t = list.trim();
  if (t === '*') return true;
  for (const raw of t.split(',')) {
    let v = raw.trim();
    if (v.startsWith('W/')) {
      if (!weak) continue; // a weak tag never matches strongly
      v = v.slice(2);
    }
    if (v === etag) return true;
  }
  return false;
}

const RANGE_IGNORE = 0;
const RANGE_OK = 1;
const RANGE_UNSATISFIABLE = 2;
interface RangeResult {
  kind: number;
  start: number;
  end: number; // inclusive
}

const RANGE_SPEC = /^\s*(\d*)\s*-\s*(\d*)\s*$/;

/** A single byte range; multi-range and malformed headers are ignored (full 200 response). */
export function parseRange(header: string, size: number): RangeResult {
  const ignore = { kind: RANGE_IGNORE, start: 0, end: 0 };
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return ignore;
  const specs = header.slice(eq + 1);
  if (specs.includes(',')) return ignore;
  const m = RANGE_SPEC.exec(specs);
  if (m === null || (m[1] === '' && m[2] === '')) return ignore;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return { kind: RANGE_UNSATISFIABLE, start: 0, end: 0 };
    return { kind: RANGE_OK, start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return ignore;
  if (start >= size) return { kind: RANGE_UNSATISFIABLE, start: 0, end: 0 };
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return { kind: RANGE_OK, start, end };
}

const ANSWER_FULL = 0;
const ANSWER_304 = 1;
const ANSWER_412 = 2;

function evaluatePreconditions(req: HttpRequest, e: Entity): number {
  const h = req.headers;
  if (h.size === 0) return ANSWER_FULL;
  const im = h.get('if-match');
  if (im !== undefined) {
    if (!etagListMatches(im, e.etag, false)) return ANSWER_412;
  } else {
    const ius = h.get('if-unmodified-since');
    if (ius !== undefined) {
      const t = parseHttpDate(ius);
      if (!Number.isNaN(t) && e.mtimeSec > t) return ANSWER_412;
    }
  }
  const inm = h.get('if-none-match');
  if (inm !== undefined) {
    if (etagListMatches(inm, e.etag, true)) return ANSWER_304;
  } else {
    const ims = h.get('if-modified-since');
    if (ims !== undefined) {
      const t = parseHttpDate(ims);
      if (!Number.isNaN(t) && e.mtimeSec <= t) return ANSWER_304;
    }
  }
  return ANSWER_FULL;
}

/** The Range to honour, considering If-Range. */
function requestedRange(req: HttpRequest, e: Entity): RangeResult | null {
  if (req.headers.size === 0) return null;
  const range = req.headers.get('range');
  if (range === undefined) return null;
  const ifRange = req.headers.get('if-range');
  if (ifRange !== undefined) {
    const v = ifRange.trim();
    if (v.startsWith('"') || v.startsWith('W/')) {
      if (v !== e.etag) return null;
    } else {
      const t = parseHttpDate(v);
      if (Number.isNaN(t) || t !== e.mtimeSec) return null;
    }
  }
  return parseRange(range, e.info.size);
}

/** Bodies up to this size also keep their whole 200 response ready (head + body, one more copy in memory). */
const WIRE_MAX = 64 * 1024;
/** What a prepared head may take, for the cache's accounting (Server name, Date, the entity's header lines). */
const WIRE_HEAD_MAX = 1024;

/** The memory a cached entry can hold: its body, and with a slot both prepared responses (keep-alive and close). */
function memoryOf(e: { body: Buffer | null; slot: WireSlot | null }): number {
  const b = e.body === null ? 0 : e.body.length;
  return e.slot === null ? b : b + 2 * (b + WIRE_HEAD_MAX);
}

const TEXT_416 = 'Content-Type: text/plain; charset=utf-8\r\n';
const BODY_416 = Buffer.from('416 Range Not Satisfiable\n');
const BODY_412 = Buffer.from('412 Precondition Failed\n');

/**
 * Answer `req` with entity `e`; content from `body` (cached) or read from `open()` (streamed). Returns a
 * promise only when it has to stream.
 */
function answer(
  req: HttpRequest,
  res: HttpResponse,
  e: Entity,
  body: Buffer | null,
  open: (() => Promise<OpenFile | null>) | null,
  slot: WireSlot | null = null,
): void | Promise<void> {
  const pre = evaluatePreconditions(req, e);
  if (pre === ANSWER_304) return res.sendPrepared(304, e.validators, null, 0, 0);
  if (pre === ANSWER_412) return res.sendPrepared(412, TEXT_416, BODY_412, 0, BODY_412.length);
  const size = e.info.size;
  let status = 200;
  let start = 0;
  let length = size;
  let extra = e.headers;
  const r = requestedRange(req, e);
  if (r !== null) {
    if (r.kind === RANGE_UNSATISFIABLE) {
      return res.sendPrepared(416, `${TEXT_416}Content-Range: bytes */${size}\r\n`, BODY_416, 0, BODY_416.length);
    }
    if (r.kind === RANGE_OK) {
      status = 206;
      start = r.start;
      length = r.end - r.start + 1;
      extra += `Content-Range: bytes ${r.start}-${r.end}/${size}\r\n`;
    }
  }
  if (body !== null) {
    if (slot !== null && status === 200) return res.sendCached(slot, extra, body);
    return res.sendPrepared(status, extra, body, start, length);
  }
  if (open === null) throw new Error('no content source');
  return streamFile(res, status, extra, start, length, open);
}

async function streamFile(
  res: HttpResponse,
  status: number,
  extra: string,
  start: number,
  length: number,
  open: () => Promise<OpenFile | null>,
): Promise<void> {
  const f = await open();
  if (f === null) throw new HttpError(404);
  try {
    await res.sendPreparedFile(status, extra, f.fd, start, length);
  } finally {
    await f.close();
  }
}

// ---- request path → file path ----

/**
 * Decode a request path into a normalised, safe relative path ("/a/b", "/dir/"), or a status: 400 malformed
 * percent-encoding, 404 anything that could escape the root or name something hidden.
 */
export function decodePath(raw: string, dotfiles: 'deny' | 'allow' = 'deny'): string | number {
  if (raw.charCodeAt(0) !== 0x2f) return 400;
  if (raw.includes('\\')) return 404;
  const parts = raw.split('/');
  const segs: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    let p = parts[i];
    if (p.includes('%')) {
      try {
        p = decodeURIComponent(p);
      } catch {
        return 400;
      }
      if (p.includes('/') || p.includes('\\')) return 404;
    }
    if (p === '' || p === '.') continue;
    if (p === '..') return 404;
    if (p.includes('\0')) return 404;
    if (dotfiles === 'deny' && p.charCodeAt(0) === 0x2e && !(segs.length === 0 && p === '.well-known')) return 404;
    segs.push(p);
  }
  if (segs.length === 0) return '/';
  const last = parts[parts.length - 1];
  return '/' + segs.join('/') + (last === '' || last === '.' ? '/' : '');
}

function encodePath(rel: string): string {
  return rel.split('/').map(encodeURIComponent).join('/');
}

/** What the content cache holds now. */
export interface StaticCacheStats {
  /** request paths that map to an entry */
  paths: number;
  /** files with an entry */
  files: number;
  /** bytes accounted against maxCacheSize: bodies and their prepared responses */
  bytes: number;
  /** files kept open (maxOpenFiles) */
  openFiles: number;
}

/** A handler serving files under `root`, with a view of its content cache. */
export type StaticHandler = Handler & { cacheStats(): StaticCacheStats };

const STATIC_OPTIONS = optionKeys<StaticOptions>({
  index: true, dotfiles: true, fallthrough: true, maxCachedFileSize: true, maxCacheSize: true, maxCacheEntries: true,
  revalidateInterval: true, maxOpenFiles: true, mimeTypes: true, cacheControl: true,
});

/**
 * Checks a static root at start: a string naming an existing directory. Throws a MegapipeError (code `ENOENT`,
 * `ENOTDIR`, `EACCES`, … with the path) for one that is not, instead of answering 404 forever.
 */
export function checkStaticRoot(root: unknown): string {
  if (typeof root !== 'string' || root === '') throw Object.assign(new TypeError(`root must be a directory path (got ${typeof root})`), { code: MpCode.INVALID_ARG });
  const abs = nodePath.resolve(root);
  let isDir: boolean;
  try {
    isDir = statSync(abs).isDirectory();
  } catch (e) {
    const x = e as NodeJS.ErrnoException;
    throw new MegapipeError(x.code ?? 'EIO', `static root ${abs}: ${x.code === 'ENOENT' ? 'no such directory' : x.message}`, x.errno, { syscall: 'stat', address: abs });
  }
  if (!isDir) throw new MegapipeError('ENOTDIR', `static root ${abs}: not a directory`, -20, { syscall: 'stat', address: abs });
  return abs;
}

/** Checks serveStatic's options (unknown keys, types, ranges), each error naming the option. */
export function checkStaticOptions(options: StaticOptions | undefined): StaticOptions {
  const o = checkOptions(options, STATIC_OPTIONS, 'serveStatic options');
  const bad = (k: string, want: string): never => { throw Object.assign(new TypeError(`serveStatic: options.${k} must be ${want}`), { code: MpCode.INVALID_ARG }); };
  if (o.index !== undefined && o.index !== false && (typeof o.index !== 'string' || o.index === '')) bad('index', 'a file name or false');
  if (o.dotfiles !== undefined && o.dotfiles !== 'deny' && o.dotfiles !== 'allow') bad('dotfiles', '"deny" or "allow"');
  if (o.fallthrough !== undefined && typeof o.fallthrough !== 'boolean') bad('fallthrough', 'a boolean');
  if (o.cacheControl !== undefined && (typeof o.cacheControl !== 'string' || !isFieldValue(o.cacheControl))) bad('cacheControl', 'a valid header value (no CR, LF or other control characters)');
  if (o.mimeTypes !== undefined && (typeof o.mimeTypes !== 'object' || o.mimeTypes === null)) bad('mimeTypes', 'an object of extension → Content-Type strings');
  if (o.mimeTypes) {
    for (const [ext, v] of Object.entries(o.mimeTypes)) {
      if (typeof v !== 'string' || !isFieldValue(v)) bad(`mimeTypes[${JSON.stringify(ext)}]`, 'a Content-Type string that is a valid header value (no CR, LF or other control characters)');
    }
  }
  return o;
}

/**
 * A handler serving files under `root`, which must be an existing directory (checked now: see checkStaticRoot).
 * Throws on an unknown option, a wrong type or a value out of range.
 */
export function serveStatic(root: string, options: StaticOptions = {}): StaticHandler {
  checkStaticRoot(root);
  checkStaticOptions(options);
  const opts: Required<Omit<StaticOptions, 'mimeTypes' | 'cacheControl'>> & StaticOptions = {
    index: 'index.html',
    dotfiles: 'deny',
    fallthrough: false,
    maxCachedFileSize: 1024 * 1024,
    maxCacheSize: 32 * 1024 * 1024,
    maxCacheEntries: 10_000,
    revalidateInterval: 1000,
    maxOpenFiles: 256,
    ...options,
  };
  for (const k of ['maxCachedFileSize', 'maxCacheSize', 'maxCacheEntries', 'revalidateInterval', 'maxOpenFiles'] as const) {
    const v = opts[k];
    if (!Number.isSafeInteger(v) || v < 0) throw Object.assign(new RangeError(`serveStatic: options.${k} must be a non-negative integer (got ${String(v)})`), { code: MpCode.OUT_OF_RANGE });
  }
  const rootAbs = nodePath.resolve(root);
  let rootReal: string | null = null;
  /** request path (raw, as received) → entry */
  const byPath = new Map<string, Entry>();
  /** real file → entry (content accounting, least recently validated first) */
  const byFile = new Map<string, Entry>();
  let cachedBytes = 0;
  let openFiles = 0;

  function forget(e: Entry): void {
    if (e.stale) return;
    e.stale = true;
    if (byFile.get(e.file) === e) byFile.delete(e.file);
    if (e.body !== null) cachedBytes -= memoryOf(e);
    const o = e.open;
    if (o !== null) {
      e.open = null;
      o.retired = true;
      openFiles--;
      if (o.users === 0) void o.file.close();
    }
  }

  /**
   * The entry's file, open for one response: its shared descriptor (opened by the first request, kept while the
   * entry stays valid, at most maxOpenFiles of them), or a descriptor of its own when none can be shared.
   */
  async function openFor(e: Entry): Promise<OpenFile | null> {
    let o = e.open;
    if (o === null) {
      const f = await files.open(e.file);
      if (f === null) return null;
      // changed since the entry was made, forgotten, opened meanwhile by another request, or no room: not shared
      if (e.stale || e.open !== null || openFiles >= opts.maxOpenFiles || !sameFile(f.info, e.info)) return f;
      o = e.open = { file: f, users: 0, retired: false };
      openFiles++;
    }
    o.users++;
    const shared = o;
    let released = false;
    return {
      info: shared.file.info,
      fd: shared.file.fd,
      async close() {
        if (released) return;
        released = true;
        if (--shared.users === 0 && shared.retired) await shared.file.close();
      },
    };
  }

  function insert(raw: string, e: Entry): void {
    const old = byFile.get(e.file);
    if (old !== undefined) forget(old);
    if (e.body !== null) {
      const need = memoryOf(e);
      for (const [, victim] of byFile) {
        if (cachedBytes + need <= opts.maxCacheSize) break;
        forget(victim);
      }
      if (cachedBytes + need > opts.maxCacheSize) { e.body = null; e.slot = null; }
      else cachedBytes += need;
    }
    byFile.set(e.file, e);
    if (byPath.size >= opts.maxCacheEntries) {
      for (const [k, v] of byPath) {
        byPath.delete(k);
        void v; // the entry itself stays accounted in byFile until memory pressure or revalidation drops it
        if (byPath.size < opts.maxCacheEntries) break;
      }
    }
    byPath.set(raw, e);
  }

  /** Is the entry still the file the path names? (one realpath + stat) */
  function revalidate(e: Entry, now: number): Promise<boolean> {
    return (e.revalidating ??= (async () => {
      try {
        const real = await files.realpath(e.lexical);
        const info = real === e.file ? await files.stat(real) : null;
        if (info === null || !sameFile(info, e.info)) {
          forget(e);
          return false;
        }
        e.checkedAt = now;
        // least recently validated first: move to the end
        if (byFile.get(e.file) === e) {
          byFile.delete(e.file);
          byFile.set(e.file, e);
        }
        return true;
      } finally {
        e.revalidating = null;
      }
    })());
  }

  function inside(real: string): boolean {
    return real === rootReal || real.startsWith(rootReal!.endsWith('/') ? rootReal! : rootReal + '/');
  }

  function refuse(res: HttpResponse, status: number): void {
    if (status === 404 && opts.fallthrough) return;
    res.sendError(status);
  }

  async function slow(req: HttpRequest, res: HttpResponse, raw: string, rel: string): Promise<void> {
    rootReal ??= await files.realpath(rootAbs);
    if (rootReal === null) return refuse(res, 404);
    let lexical = rootReal + rel;
    let real = await files.realpath(lexical);
    if (real === null) return refuse(res, 404);
    if (!inside(real)) return refuse(res, 403);
    let info = await files.stat(real);
    if (info === null) return refuse(res, 404);
    if (info.isDirectory) {
      if (!rel.endsWith('/')) {
        const q = req.rawQuery;
        res.status(301).setHeader('Location', encodePath(rel) + '/' + (q ? '?' + q : ''));
        return res.send('301 Moved Permanently\n');
      }
      if (opts.index === false) return refuse(res, 403);
      lexical = lexical + opts.index;
      real = await files.realpath(lexical);
      if (real === null) return refuse(res, 403);
      if (!inside(real)) return refuse(res, 403);
      info = await files.stat(real);
      if (info === null || !info.isFile) return refuse(res, 403);
    }
    if (!info.isFile) return refuse(res, 403);
    let body: Buffer | null = null;
    if (info.size <= opts.maxCachedFileSize) {
      const r = await files.readSmall(real, opts.maxCachedFileSize, (fd, pos, len) => res.readFile(fd, pos, len));
      if (r === null) return refuse(res, 404);
      info = r.info;
      body = r.data;
    }
    const e: Entry = {
      ...makeEntity(info, real, opts),
      file: real,
      lexical,
      body,
      slot: body !== null && body.length <= WIRE_MAX ? { wire: null, closeWire: null, date: '', server: '' } : null,
      checkedAt: timeNow(),
      stale: false,
      revalidating: null,
      open: null,
    };
    insert(raw, e);
    return answer(req, res, e, body, () => openFor(e), e.slot);
  }

  function fromEntry(req: HttpRequest, res: HttpResponse, e: Entry): void | Promise<void> {
    return answer(req, res, e, e.body, e.body !== null ? null : () => openFor(e), e.slot);
  }

  const handler: Handler = (req, res) => {
    const m = req.method;
    if (m !== 'GET' && m !== 'HEAD') {
      if (opts.fallthrough) return;
      res.status(405).setHeader('Allow', 'GET, HEAD');
      return res.send('405 Method Not Allowed\n');
    }
    const raw = req.path;
    const e = byPath.get(raw);
    if (e !== undefined) {
      if (!e.stale) {
        const now = timeNow();
        if (now - e.checkedAt < opts.revalidateInterval) return fromEntry(req, res, e); // synchronous for cached bodies
        return revalidate(e, now).then((ok) => (ok ? fromEntry(req, res, e) : route(req, res, raw)));
      }
      byPath.delete(raw);
    }
    return route(req, res, raw);
  };

  function route(req: HttpRequest, res: HttpResponse, raw: string): void | Promise<void> {
    const rel = decodePath(raw, opts.dotfiles);
    if (typeof rel === 'number') return refuse(res, rel);
    return slow(req, res, raw, rel);
  }

  return Object.assign(handler, { cacheStats: (): StaticCacheStats => ({ paths: byPath.size, files: byFile.size, bytes: cachedBytes, openFiles }) });
}

/** `res.file(path)`: any path, no root confinement, no cache. */
export async function sendFile(req: HttpRequest, res: HttpResponse, path: string, options: FileOptions = {}): Promise<void> {
  const ct = options.contentType;
  if (ct !== undefined && (typeof ct !== 'string' || !isFieldValue(ct))) {
    throw Object.assign(new TypeError('res.file: options.contentType must be a valid header value (no CR, LF or other control characters)'), { code: MpCode.INVALID_ARG });
  }
  const abs = nodePath.resolve(path);
  const f = await files.open(abs);
  if (f === null) throw new HttpError(404);
  try {
    const info = f.info;
    if (!info.isFile) throw new HttpError(404);
    const e = makeEntity(info, abs, {});
    if (ct) e.headers = e.headers.replace(/^Content-Type: [^\r]*/, () => `Content-Type: ${ct}`);
    if (options.conditional === false) return await res.sendPreparedFile(200, e.headers, f.fd, 0, info.size);
    await answer(req, res, e, null, async () => f);
  } finally {
    await f.close();
  }
}

setFileSender(sendFile);
