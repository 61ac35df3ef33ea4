// The echo/RPC server on the raw channel API (the paper's loop, written as an event handler).
// Every byte received is written back; EOF or an error closes the connection.
import type { Channel, ChannelServer, Listener, MpEvent, WorkerContext } from '../src/index.js';

export interface EchoOptions { lwsocket?: boolean; member?: number }

export function startEcho(ch: Channel, listener: Listener, options: EchoOptions = {}): ChannelServer {
  const lh = ch.register(listener, 'listener', { member: options.member });
  let open = 0, accepted = 0, closing = false;
  let idle: (() => void) | null = null;
  ch.onEvent((ev: MpEvent) => {
    switch (ev.type) {
      case 'accept': open++; accepted++; ch.read(ev.handle); break;                       // mp_accept → mp_read
      case 'read':
        if (ev.result > 0) ch.write(ev.handle, ev.buffer, ev.offset, ev.result);         // mp_write (copied; batched)
        else ch.disconnect(ev.handle);                                                    // EOF → mp_disconnect
        break;
      case 'error': if (ch.isOpen(ev.handle)) ch.disconnect(ev.handle, true); break;            // a connection failed
      case 'listener-error': break;   // accepting goes on by itself (table full: fds; out of handles: that one refused)
      case 'disconnect': if (ev.handle !== lh && --open === 0 && idle) idle(); break;
      default:
    }
  });
  ch.accept(lh, { lwsocket: options.lwsocket ?? true });
  return {
    channel: ch,
    get connections() { return open; },
    get accepted() { return accepted; },
    close(deadlineMs = 1000) {
      if (!closing) { closing = true; ch.unregister(lh); }
      if (open === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => { for (let h = 0; h < ch.limits.maxHandles; h++) if (h !== lh && ch.isOpen(h)) { try { ch.disconnect(h, true); } catch { /* closing */ } } }, deadlineMs);
        idle = () => { clearTimeout(t); resolve(); };
      });
    },
  };
}

/** serve() worker module: the same echo server in every worker. */
export default function setup(ctx: WorkerContext): ChannelServer {
  return startEcho(ctx.channel, ctx.listener, { lwsocket: ctx.lwsocket, member: ctx.member });
}
