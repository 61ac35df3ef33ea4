// The part of a megapipe/net Socket's state that an idle accepted connection does not use (socket.ts), and the errors
// of node:net that a Socket makes itself.
import type { SocketAddress } from '../channel.js';

/** node:net's error for a write whose socket closed before it connected. */
export function closedBeforeConnection(): Error {
  return Object.assign(new Error('Socket closed before the connection was established'), { code: 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION' });
}

/**
 * The state of a Socket that an idle accepted connection does not use — held writes, a pending end or destroy, an
 * error, cached addresses, the idle timeout, connect()'s target — in an object of its own, made at first need: a
 * Socket per connection, and 14 fields fewer in each (112 bytes) while nothing of this is used.
 */
export class Rare {
  // TCP_KEEPIDLE as set by setKeepAlive (the kernel's once the connection is open)
  keepAliveSecs = 0;
  // a write callback held while the channel's queue is above its high-water mark (Writable passes one write at a time)
  heldWrite: ((err?: Error | null) => void) | null = null;
  // the writable side's end, waiting for every queued byte to reach the kernel
  finalCb: ((err?: Error | null) => void) | null = null;
  // a write or end made before the connection is established (called with an error when the socket is destroyed first)
  beforeHandle: ((err?: Error) => void) | null = null;
  // _destroy's callback, until the channel's disconnect event
  destroyCb: ((err: Error | null) => void) | null = null;
  destroyErr: Error | null = null;
  error: Error | null = null;
  remote: SocketAddress | undefined = undefined;
  local: SocketAddress | undefined = undefined;
  // the timeout property: setTimeout's argument as given (node:net's takes even one it then refuses)
  timeout: unknown = 0;
  // the idle timeout: its length (0: off), the one timer (pending until timerDue), the last activity
  timeoutMs = 0;
  timer: NodeJS.Timeout | null = null;
  timerDue = 0;
  lastActive = 0;
  connectTo: { address: string; port: number } | null = null;
  // connect()'s attempts (and destroy()s): a lookup or deferred start answers only the current one
  attempt = 0;
}

/** node:net's error for a write after the peer's FIN on a socket that is not half-open. */
export function endedByPeer(): Error {
  return Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });
}
