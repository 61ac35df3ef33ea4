// Loads the C addon once per thread. Absent (not built, non-Linux) → `native` is null and the portable backend is used.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

export interface ProbeResult {
  ok: boolean;
  errno: number;
  kernel?: string;
  singleIssuer?: boolean;
  deferTaskrun?: boolean;
  coopTaskrun?: boolean;
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

export interface NativeSockName { address: string; port: number; family: 4 | 6 }

export interface NativeAddon {
  probe(): ProbeResult;
  channelCreate(options: Record<string, number>, onEvents: (n: number) => void, resource: object): NativeChannel;
  channelSubmit(channel: object): number;
  channelRef(channel: object, on: boolean): void;
  /** 0, or -ETIMEDOUT when the kernel still had requests after the teardown deadline (memory then pinned for good). */
  channelClose(channel: object): number;
  /** Records `bytes`'s memory as reference slot `slot` (sends with RowFlag.Ref): 0, or -EINVAL. */
  channelRefSet(channel: object, slot: number, bytes: Uint8Array): number;
  encodeSockaddr(channel: object, offset: number, host: string, port: number): number;
  listenGroup(host: string, port: number, count: number, backlog: number, reusePort: boolean, cpuToMember: Int32Array | null, deferAcceptSecs: number, ipv6Only: boolean): { fds: number[]; port: number };
  clientSocket(host: string, localAddress?: string): number;
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
}

function load(): { addon: NativeAddon | null; error: string | null } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/native.js → ../../build/Release; src/native.ts run directly → ../build/Release
  const candidates = [path.resolve(here, '../../build/Release/megapipe.node'), path.resolve(here, '../build/Release/megapipe.node')];
  const require = createRequire(import.meta.url);
  let lastError = 'addon not built (npm install builds it)';
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      return { addon: require(file) as NativeAddon, error: null };
    } catch (e) {
      lastError = (e as Error).message;
    }
  }
  return { addon: null, error: lastError };
}

const loaded = load();
export const native: NativeAddon | null = loaded.addon;
export const nativeLoadError: string | null = loaded.error;

let probed: ProbeResult | null | undefined;
/** What this kernel offers (a throw-away ring, set up once per thread), or null without the addon. */
export function kernelProbe(): ProbeResult | null {
  if (probed === undefined) probed = native?.probe() ?? null;
  return probed;
}
