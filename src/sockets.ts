// Socket calls the kernel offers and node:net does not — a listener group steered by CPU, a listening socket's queue
// length, a non-blocking accept, SO_INCOMING_CPU, closing a descriptor by number, pinning a thread — through the addon:
// the one place outside the io_uring backend (src/uring/) that calls it. Without the addon each says so by its result
// (-ENOSYS, or -1 for a CPU), never by throwing; listenGroup alone needs it.
import { native } from './native.js';
import { MegapipeError, MpCode, fromAddon } from './errors.js';

export const ENOSYS = -38;

/** Whether the addon (and with it these calls) is here. */
export const socketsAvailable = native !== null;

/** A connection taken from listening socket `fd`'s queue without waiting (nonblocking, close-on-exec), or -errno
 * (-EAGAIN: the queue is empty). */
export function acceptNow(fd: number): number { return native ? native.acceptNow(fd) : ENOSYS; }

/** Connections waiting in listening socket `fd`'s accept queue, or -errno. */
export function acceptQueueLength(fd: number): number { return native ? native.acceptQueueLength(fd) : ENOSYS; }

/** The CPU that processed socket `fd`'s packets (SO_INCOMING_CPU), or -1 when unknown. */
export function socketIncomingCpu(fd: number): number {
  const r = native ? native.incomingCpu(fd) : -1;
  return r < 0 ? -1 : r;
}

/** A new descriptor (close-on-exec, ≥ 3) for the same open socket or file as `fd`, or -errno. */
export function dupFd(fd: number): number { return native ? native.dupFd(fd) : ENOSYS; }

/** Closes descriptor `fd`: 0 or -errno. */
export function closeFd(fd: number): number { return native ? native.closeFd(fd) : ENOSYS; }

/** The CPU the calling thread runs on now (getcpu), or -1 without the addon. */
export function currentCpu(): number { return native ? native.currentCpu() : -1; }

/** Pins the calling thread to `cpu`: 0 or -errno. */
export function pinThread(cpu: number): number { return native ? native.pinThread(cpu) : ENOSYS; }

/** Opens `count` listening sockets on one address, joined to one reuseport group in order (see native listenGroup).
 * A failed system call throws node's way (`EADDRINUSE`, with syscall, address and port). */
export function listenGroup(host: string, port: number, count: number, backlog: number, reusePort: boolean, cpuToMember: Int32Array | null, deferAcceptSecs: number, ipv6Only = false): { fds: number[]; port: number } {
  if (!native) throw new MegapipeError(MpCode.BACKEND_UNAVAILABLE, 'native listeners need the addon; use listenPortable() with the portable backend');
  try {
    return native.listenGroup(host, port, count, backlog, reusePort, cpuToMember, deferAcceptSecs, ipv6Only);
  } catch (e) { throw fromAddon(e, host, port); }
}
