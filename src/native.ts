// Loads the C addon once per thread. Absent (no prebuild for this platform and none built, MEGAPIPE_NO_ADDON=1,
// non-Linux) → `native` is null and the portable backend is used.
import { createRequire } from 'node:module';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

export interface ProbeResult {
  ok: boolean;
  errno: number;
  kernel?: string;
  /** The set-up flags and features of the ring a channel would get (IORING_SETUP_*, IORING_FEAT_*). */
  setupFlags?: number;
  features?: number;
  singleIssuer?: boolean;
  deferTaskrun?: boolean;
  coopTaskrun?: boolean;
  /** Whether a DEFER_TASKRUN ring signals its eventfd as a completion is queued (absent: could not be probed). Where it
   * does not, channels are set up without DEFER_TASKRUN: a sleeping loop would not be woken for 14–35 ms. */
  deferWakes?: boolean;
  /** Whether a multishot receive can be capped at a total of bytes, after which it ends by itself (Linux 6.17; absent:
   * could not be probed). Receives on rings without DEFER_TASKRUN are multishot only where it can (src/uring/receive.ts). */
  recvCap?: boolean;
  bundles?: boolean;
  nodrop?: boolean;
  ops?: number[];
  bufRing?: boolean;
  sparseFiles?: boolean;
  nofileSoft?: number;
  nofileHard?: number;
}

export interface NativeLayout {
  hdr: number; req: number; ev: number; stats: number; recycle: number; addr: number;
  requestRows: number; eventRows: number; recvBuffers: number; recvBufferSize: number;
  sendArenaBytes: number; addressBytes: number; sqEntries: number; cqEntries: number; files: number;
  setupFlags: number; features: number; deferTaskrun: boolean; singleIssuer: boolean; registeredRing: boolean;
}

export interface NativeChannel {
  channel: object;
  ctl: ArrayBuffer;
  recv: ArrayBuffer;
  send: ArrayBuffer;
  layout: NativeLayout;
}

/** Fields of an SQE (channelPrepRow); opFlags is the per-op flags word (msg_flags, accept_flags, cancel_flags…). */
export interface NativeSqe {
  opcode: number; flags: number; ioprio: number; fd: number; len: number; opFlags: number; bufGroup: number;
  fileIndex: number; off: number; userDataLo: number; userDataHi: number;
}

export interface NativeSockName { address: string; port: number; family: 4 | 6 }

export interface NativeAddon {
  probe(): ProbeResult;
  channelCreate(options: Record<string, number>, onEvents: (n: number) => void, resource: object): NativeChannel;
  channelSubmit(channel: object): number;
  channelRef(channel: object, on: boolean): void;
  /** The SQE a request row (Int32Array of Row.I32) becomes, not submitted — for tests of the row → SQE mapping — or
   * -EINVAL where the native side refuses the row (-EBADF once the channel is closed). */
  channelPrepRow(channel: object, row: Int32Array): NativeSqe | number;
  /** 0, or -ETIMEDOUT when the kernel still had requests after the teardown deadline (memory then pinned for good). */
  channelClose(channel: object): number;
  /** Records `bytes`'s memory as reference slot `slot` (sends with RowFlag.Ref): 0, or -EINVAL. */
  channelRefSet(channel: object, slot: number, bytes: Uint8Array): number;
  encodeSockaddr(channel: object, offset: number, host: string, port: number): number;
  listenGroup(host: string, port: number, count: number, backlog: number, reusePort: boolean, cpuToMember: Int32Array | null, deferAcceptSecs: number, ipv6Only: boolean): { fds: number[]; port: number };
  clientSocket(host: string, localAddress?: string, localPort?: number): number;
  closeFd(fd: number): number;
  /** A socket's local (peer false) or remote address, or -errno. */
  sockName(fd: number, peer: boolean): NativeSockName | number;
  /** The same for the lwsocket in direct-descriptor `slot` (through a temporary fd: Linux 6.8), or -errno. */
  channelSockName(channel: object, slot: number, peer: boolean): NativeSockName | number;
  /** A new descriptor (close-on-exec) for the same open file, or -errno. */
  dupFd(fd: number): number;
  incomingCpu(fd: number): number;
  channelIncomingCpu(channel: object, slot: number): number;
  /** An MP_SOCKOPT_* on an lwsocket: 0 or -errno (-EAGAIN: set when the request runs). */
  channelSetSockOpt(channel: object, slot: number, which: number, value: number): number;
  /** Reads an MP_SOCKOPT_* (not Linger0) of an lwsocket back (through an fd installed for the call): the value or -errno. */
  channelGetSockOpt(channel: object, slot: number, which: number): number;
  setSockOpt(fd: number, which: number, value: number): number;
  getSockOpt(fd: number, which: number): number;
  pinThread(cpu: number): number;
  acceptQueueLength(fd: number): number;
  acceptNow(fd: number): number;
  currentCpu(): number;
  /** A nonblocking pipe for spliced sends: [readFd, writeFd, capacity], or -errno. */
  pipeOpen(bytes: number): [number, number, number] | number;
  /** sendfile(2) of a file region to a nonblocking socket: the bytes it took now (0: the file ended), or -errno. */
  sendFileTo(socketFd: number, fileFd: number, position: number, length: number): number;
  /** Whether the file region is all in the page cache (cachestat, Linux 6.5): 1 (also for length 0), 0 (a page not
   * resident; past the end of the file none is), or -errno: -ENOSYS before 6.5, -EPERM on 6.14+ for a file the process
   * may neither write nor own (the kernel hides its residency; mincore would say resident regardless), -EOPNOTSUPP on
   * hugetlbfs, -EBADF, -EINVAL for a negative position. Native file_cached (native/sockets.h). */
  fileCached(fd: number, position: number, length: number): number;
  /** Whether the fd is nonblocking: 1, 0, or -errno. */
  fdNonblocking(fd: number): number;
  /** A regular fd (close-on-exec) for the lwsocket in direct-descriptor `slot`, which the caller closes, or -errno. */
  channelInstallFd(channel: object, slot: number): number;
}

/** The C library this node binary runs on, read from its ELF interpreter (PT_INTERP): 'musl', 'glibc', or null when
 * not a dynamically linked Linux ELF (then node-gyp-build's own guess stands). */
function nodeLibc(): 'musl' | 'glibc' | null {
  if (process.platform !== 'linux') return null;
  let fd = -1;
  try {
    fd = openSync(process.execPath, 'r');
    const b = Buffer.alloc(4096);
    const n = readSync(fd, b, 0, b.length, 0);
    if (n < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return null;   // an ELF64 file
    const phoff = Number(b.readBigUInt64LE(0x20)), phentsize = b.readUInt16LE(0x36), phnum = b.readUInt16LE(0x38);
    for (let i = 0; i < phnum && phoff + (i + 1) * phentsize <= n; i++) {
      const ph = phoff + i * phentsize;
      if (b.readUInt32LE(ph) !== 3) continue;   // PT_INTERP: the dynamic loader's path
      const off = Number(b.readBigUInt64LE(ph + 8)), size = Number(b.readBigUInt64LE(ph + 32));
      const interp = Buffer.alloc(Math.min(size, 256));
      readSync(fd, interp, 0, interp.length, off);
      return interp.toString('latin1').includes('musl') ? 'musl' : 'glibc';
    }
    return null;
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** The package's root (where package.json, build/ and prebuilds/ are): dist/src/native.js → ../.., src/native.ts → .. */
function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [path.resolve(here, '../..'), path.resolve(here, '..')]) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
  }
  return path.resolve(here, '../..');
}

/**
 * Finds and loads the addon with node-gyp-build: a local build (build/Release) first, then the prebuilt one for this
 * platform, architecture and C library (prebuilds/linux-x64/megapipe.{glibc,musl}.node); MEGAPIPE_PREBUILD=dir
 * points it at another package directory. MEGAPIPE_NO_ADDON=1 loads nothing (as on a machine without the addon).
 */
function load(): { addon: NativeAddon | null; error: string | null; file?: string } {
  if (process.env.MEGAPIPE_NO_ADDON === '1') return { addon: null, error: 'MEGAPIPE_NO_ADDON=1' };
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  // node-gyp-build reads LIBC once, when it is first loaded; it only knows musl from /etc/alpine-release
  const libc = process.env.LIBC === undefined ? nodeLibc() : null;
  let gypBuild: { path(dir: string): string };
  try {
    if (libc !== null) process.env.LIBC = libc;
    gypBuild = require('node-gyp-build') as { path(dir: string): string };
  } catch (e) {
    return { addon: null, error: `node-gyp-build (the addon's loader) is missing: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    if (libc !== null) delete process.env.LIBC;
  }
  let file: string;
  try {
    file = gypBuild.path(root);
  } catch {
    return { addon: null, error: `no addon built for ${process.platform}-${process.arch}${libc ? ` (${libc})` : ''} and none prebuilt for it (npm rebuild megapipe builds one, with a C compiler)` };
  }
  try {
    return { addon: require(file) as NativeAddon, error: null, file };
  } catch (e) {
    return { addon: null, error: `${path.relative(root, file)} did not load: ${(e as Error).message.split('\n')[0]}` };
  }
}

const loaded = load();
export const native: NativeAddon | null = loaded.addon;
export const nativeLoadError: string | null = loaded.error;
/** The addon file loaded (a local build or a prebuild), or null. */
export const nativeFile: string | null = loaded.file ?? null;

let probed: ProbeResult | null | undefined;
/** What this kernel offers (a throw-away ring, set up once per thread), or null without the addon. */
export function kernelProbe(): ProbeResult | null {
  if (probed === undefined) probed = native?.probe() ?? null;
  return probed;
}
