// Completion events: what a channel reports, one per finished operation (mp_dispatch's event).

export type EventType = 'accept' | 'read' | 'write' | 'connect' | 'disconnect' | 'error' | 'listener-error';

/** What every event has. */
interface EventBase {
  /** The handle the event is about (see each type). */
  readonly handle: number;
  /** The handle's cookie (register/connect/setCookie; for `accept`, the listener's). */
  readonly cookie: unknown;
  readonly result: number;
  readonly offset: number;
  /** A detached copy that owns its data: safe to keep after the handler returns. */
  copy(): MpEvent;
  toJSON(): object;
}

/** A connection received `result` bytes in `buffer[offset, offset+result)`; `result === 0`: the peer closed its
 * side (EOF; `buffer` is then empty). In a handler, `buffer` is the receive pool: valid until the handler returns. */
export interface ReadEvent extends EventBase {
  readonly type: 'read';
  readonly buffer: Uint8Array;
  /** The received bytes as a view (allocates the view; buffer/offset/result avoid it). */
  readonly data: Uint8Array;
  readonly code: undefined;
}

/** `handle` is a new connection accepted on listener `result` (whose cookie this event carries). */
export interface AcceptEvent extends EventBase { readonly type: 'accept'; readonly buffer: undefined; readonly data: null; readonly code: undefined }
/** `result` bytes of the connection's queued data reached the kernel. */
export interface WriteEvent extends EventBase { readonly type: 'write'; readonly buffer: undefined; readonly data: null; readonly code: undefined }
/** A `connect()` finished (`result` 0). */
export interface ConnectEvent extends EventBase { readonly type: 'connect'; readonly buffer: undefined; readonly data: null; readonly code: undefined }
/** The handle is gone (after disconnect/unregister, or a failure): the final event of a handle. */
export interface DisconnectEvent extends EventBase { readonly type: 'disconnect'; readonly buffer: undefined; readonly data: null; readonly code: string | undefined }
/** An operation on a connection failed: `result` is the negative errno, `code` its stable name (`ECONNRESET`,
 * `EPIPE`, `MP_ERR_…`). The connection is unusable: `disconnect(handle, true)` it. */
export interface ErrorEvent extends EventBase { readonly type: 'error'; readonly buffer: undefined; readonly data: null; readonly code: string }
/** Accepting on listener `handle` failed or changed mode (`MP_ERR_TABLE_FULL`, `MP_ERR_LIMIT`, `EMFILE`, …); the
 * listener keeps accepting when it can. Never delivered for a connection. */
export interface ListenerErrorEvent extends EventBase { readonly type: 'listener-error'; readonly buffer: undefined; readonly data: null; readonly code: string }

/**
 * A completion event, discriminated by `type`: inside `case 'read':` `ev.buffer` is a Uint8Array, inside
 * `case 'error':` `ev.code` a string. In a handler (`channel.onEvent`), the same object is reused for every event of a
 * batch: read its fields during the call and keep nothing. `dispatch()` and async iteration return private copies.
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
export type MpEvent = ReadEvent | AcceptEvent | WriteEvent | ConnectEvent | DisconnectEvent | ErrorEvent | ListenerErrorEvent;

export type EventHandler = (ev: MpEvent) => void;

/** The buffer of a read event without bytes (EOF). */
const EMPTY = new Uint8Array(0);

/** (Not exported by the package.) The one mutable object behind every MpEvent a channel delivers (reused; see MpEvent). */
export class EventRecord {
  type: EventType = 'read';
  handle = -1;
  cookie: unknown = undefined;
  result = 0;
  code: string | undefined = undefined;
  buffer: Uint8Array | undefined = undefined;
  offset = 0;

  /** Fills the record for one event (a read always gets a buffer: an empty one at EOF). */
  set(type: EventType, handle: number, cookie: unknown, result: number, code: string | undefined, buffer: Uint8Array | undefined, offset: number): MpEvent {
    this.type = type; this.handle = handle; this.cookie = cookie; this.result = result; this.code = code;
    this.buffer = buffer === undefined && type === 'read' ? EMPTY : buffer; this.offset = offset;
    return this as unknown as MpEvent;
  }

  get data(): Uint8Array | null {
    return this.type === 'read' && this.buffer !== undefined ? this.buffer.subarray(this.offset, this.offset + this.result) : null;
  }

  copy(): MpEvent {
    const e = new EventRecord();
    e.type = this.type; e.handle = this.handle; e.cookie = this.cookie; e.result = this.result; e.code = this.code;
    if (this.type === 'read') {
      e.buffer = this.buffer !== undefined && this.result > 0 ? Uint8Array.prototype.slice.call(this.buffer, this.offset, this.offset + this.result) : EMPTY;
      e.offset = 0;
    }
    return e as unknown as MpEvent;
  }

  toJSON(): object {
    return { type: this.type, handle: this.handle, cookie: this.cookie, result: this.result, code: this.code };
  }
}
