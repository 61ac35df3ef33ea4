// The connection-session model that servers built on megapipe implement (uSockets-style: one object per
// connection, called with received bytes). Both backends drive it: `serveChannel` over a channel's events,
// and `serveNet` over node:net. Applications (apps/) use only this interface and `serve()`.

/** One accepted connection, as an application sees it. Owned by the library; valid until `close` runs. */
export interface Conn {
  /** Small integer naming the connection within its channel (a handle); reused after the connection closes. */
  readonly id: number;
  /** Index of the worker (channel) serving this connection: 0 when single-threaded. */
  readonly worker: number;
  /**
   * The peer's address (`'127.0.0.1'`, `'::1'`), port and family, and this end's address and port, as node:net's
   * socket has them. Read from the kernel at first use, not on accept (Channel.socketAddress), then kept; undefined
   * when the kernel cannot say (the connection already gone before the first use), and for that one read when an
   * lwsocket's channel has its completion queue full (Channel.socketAddress's `EAGAIN`: not kept, a later read asks
   * again). Never another connection's address.
   */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /**
   * Queue bytes for sending, in order. The bytes are copied before `write` returns: the caller may reuse its
   * buffer at once. Returns false when the connection's queued bytes are above its high-water mark; the
   * session's `drain` is called when they fall below the low-water mark. Writing after `end`/`destroy` is
   * ignored and returns false. A string is sent UTF-8 encoded, as node:net's `socket.write(string)` does.
   */
  write(data: Uint8Array, offset?: number, length?: number): boolean;
  write(text: string): boolean;
  /** Latin-1/ASCII string write without an intermediate Buffer (protocol text). Same contract as `write`. */
  writeAscii(text: string): boolean;
  /**
   * `write` without the copy (Channel.writeNoCopy): the bytes are sent from `data` itself, which must not change
   * until they are sent — for immutable bytes such as a cached response. Otherwise the same contract as `write`.
   */
  writeNoCopy(data: Uint8Array, offset?: number, length?: number): boolean;
  /**
   * Queue `length` bytes of the regular file `fd` from `position`, in order with writes (through the worker's ring
   * on io_uring: no thread pool, no copy in JavaScript; large regions spliced, see Channel.sendFile). Resolves once
   * every byte has been read (spliced: sent) — `fd` must stay open until then. Rejects (and the connection closes
   * with that error) if the file is shorter than asked (`MP_ERR_SHORT_FILE`) or cannot be read; rejects with
   * `MP_ERR_CLOSED` if the connection closes first. The file must not shrink meanwhile: bytes past the new end that a
   * zero-copy send already handed to the kernel can go out as zeros (see Channel.sendFile).
   */
  sendFile(fd: number, position: number, length: number): Promise<void>;
  /**
   * Read up to `length` bytes of the regular file `fd` from `position` (shorter at its end) through this
   * connection's worker (its ring on io_uring). Not tied to the connection: it completes even if the connection closes.
   */
  readFile(fd: number, position: number, length: number): Promise<Buffer>;
  /** Bytes queued and not yet acknowledged by the kernel. */
  readonly pendingBytes: number;
  /** Stop delivering `data` to the session until `resume` (the socket's receive buffer then fills: TCP flow control). */
  pause(): void;
  resume(): void;
  /**
   * Half-close: send what is queued, then shut down the write side (the peer reads EOF); input keeps arriving (`data`,
   * then the session's `end` at the peer's EOF) until `end` or `destroy` closes the connection — or until both sides
   * have ended: a connection half-closed and at the peer's EOF closes by itself once its bytes are sent (`close`
   * follows), as node:net's does. Writes afterwards are ignored and return false. For a lingering close (RFC 9112
   * §9.6): the peer sees the response end while what it is still sending is read, not answered with a reset.
   * Idempotent.
   */
  halfClose(): void;
  /** Send what is queued, then close the connection (FIN). `close` follows. */
  end(): void;
  /** Close now, discarding queued bytes (the peer may see a reset). `close` follows. */
  destroy(): void;
}

/** Per-connection protocol state, created by the application for each accepted connection. */
export interface Session {
  /**
   * Bytes received, in order. `buf[offset, offset+length)` is valid only until this call returns (it is a view of
   * the channel's receive-buffer pool): copy what must be kept.
   */
  data(buf: Uint8Array, offset: number, length: number): void;
  /** The peer finished sending (EOF). Default when absent: `conn.end()`. */
  end?(): void;
  /**
   * Queued bytes fell below the low-water mark after `write` returned false. Never once `end` ran (the connection closes
   * when they are sent); after `halfClose` it still comes — input goes on, and a session that paused its input while
   * its output was above the mark resumes it here.
   */
  drain?(): void;
  /**
   * The server is shutting down gracefully: finish what is in flight, then `conn.end()`. Without this method the
   * connection is ended at once when nothing is queued for it. Connections still open at the deadline are destroyed.
   */
  shutdown?(): void;
  /** The connection is gone; `err` is set when it ended by an error (e.g. code `ECONNRESET`). Called once. */
  close?(err?: Error & { code?: string }): void;
}

/** Called once per accepted connection; returns that connection's session. */
export type SessionFactory = (conn: Conn) => Session;
