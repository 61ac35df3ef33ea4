// Completion events: what a channel reports, one per finished operation (mp_dispatch's event).

export type EventType = 'accept' | 'read' | 'write' | 'connect' | 'disconnect' | 'error' | 'listener-error';

/**
 * A completion event. In a handler (`channel.onEvent`), the same object is reused for every event of a batch:
 * read its fields during the call and keep nothing. `dispatch()` and async iteration return private copies.
 *
 * - `accept`: `handle` is the new connection, `cookie` the listener's cookie, `result` the listener's handle.
 * - `read`: `result` bytes in `buffer[offset, offset+result)`; `result === 0` means the peer closed its side (EOF).
 * - `write`: `result` bytes of this connection's queued data reached the kernel.
 * - `connect`: a `connect()` finished; `result` is 0.
 * - `disconnect`: the handle is gone (after `disconnect`/`unregister`, or a failure); the final event of a handle.
 * - `error`: an operation on a connection failed; `result` is the negative errno, `code` its stable name
 *   (`ECONNRESET`, `EPIPE`, `MP_ERR_…`). The connection is unusable: `disconnect(handle, true)` it.
 * - `listener-error`: accepting on listener `handle` failed or changed mode: `MP_ERR_TABLE_FULL` (the lwsocket table is
 *   full: connections come as regular fds until slots free up), `MP_ERR_LIMIT` (maxHandles: that connection was
 *   refused), `EMFILE`/`ENFILE`/`ENOMEM` (the kernel refused an accept; accepting resumes when a handle closes). The
 *   listener stays registered and keeps accepting when it can; nothing is to be done on `handle` (it is not a
 *   connection). Never delivered for a connection.
 */
export class MpEvent {
  type: EventType = 'read';
  handle = -1;
  cookie: unknown = undefined;
  result = 0;
  code: string | undefined = undefined;
  /** The receive-buffer pool (read events); valid until the handler returns. */
  buffer: Uint8Array | undefined = undefined;
  offset = 0;

  /** The received bytes of a read event as a view (allocates a view object; use buffer/offset/result to avoid it). */
  get data(): Uint8Array | null {
    return this.type === 'read' && this.buffer !== undefined ? this.buffer.subarray(this.offset, this.offset + this.result) : null;
  }

  /** A detached copy that owns its data: safe to keep after the handler returns. */
  copy(): MpEvent {
    const e = new MpEvent();
    e.type = this.type; e.handle = this.handle; e.cookie = this.cookie; e.result = this.result; e.code = this.code;
    if (this.type === 'read' && this.buffer !== undefined && this.result > 0) {
      e.buffer = Uint8Array.prototype.slice.call(this.buffer, this.offset, this.offset + this.result);
      e.offset = 0;
    }
    return e;
  }

  toJSON(): object {
    return { type: this.type, handle: this.handle, cookie: this.cookie, result: this.result, code: this.code };
  }
}

export type EventHandler = (ev: MpEvent) => void;
