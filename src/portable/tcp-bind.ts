// A TCP socket bound synchronously without the addon, for listen() on the portable backend: node:net binds only
// asynchronously (its dns.lookup step runs on a later tick even for an address literal), and listen() returns a bound
// address at once. This is node's own TCP handle (tcp_wrap, the object net.Server keeps in `_handle`), bound and not yet
// listening: the channel that registers it makes a net.Server listen on it (net.Server.listen(handle)).
import { MegapipeError, MpCode, systemError } from '../errors.js';

/** The parts of node's TCP handle (tcp_wrap's TCP) used here. */
export interface TcpHandle {
  readonly fd: number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  getsockname(out: { address?: string; port?: number }): number;
  close(cb?: () => void): void;
}

interface TcpWrap { TCP: new (type: number) => TcpHandle; constants: { SERVER: number } }

let wrap: TcpWrap | null | undefined;
function tcpWrap(): TcpWrap | null {
  if (wrap === undefined) {
    try {
      const w = (process as unknown as { binding(name: string): unknown }).binding('tcp_wrap') as Partial<TcpWrap>;
      wrap = typeof w.TCP === 'function' && typeof w.constants?.SERVER === 'number' ? w as TcpWrap : null;
    } catch {
      wrap = null;   // a node that refuses process.binding (the permission model)
    }
  }
  return wrap;
}

/**
 * A TCP socket bound to `host:port` (an address literal; port 0: the kernel picks; `ipv6Only`: IPV6_V6ONLY on an IPv6
 * address), not yet listening: its handle, its
 * descriptor and the bound port. Throws as node does when the address cannot be bound (`bind EADDRINUSE …`), and
 * MP_ERR_BACKEND_UNAVAILABLE when this node does not give its TCP handle (use listenPortable() there).
 */
export function bindTcp(host: string, port: number, ipv6: boolean, ipv6Only = false): { handle: TcpHandle; fd: number; port: number } {
  const w = tcpWrap();
  if (w === null) throw new MegapipeError(MpCode.BACKEND_UNAVAILABLE, 'listen() without the addon needs node\'s TCP handle (process.binding(\'tcp_wrap\')), which this node refuses; use listenPortable()');
  const handle = new w.TCP(w.constants.SERVER);
  // flags: UV_TCP_IPV6ONLY (1) for ipv6Only, else '::' stays dual-stack, as node's
  const r = ipv6 ? handle.bind6(host, port, ipv6Only ? 1 : 0) : handle.bind(host, port);
  const out: { port?: number } = {};
  const n = r === 0 ? handle.getsockname(out) : r;
  if (n !== 0) {
    handle.close();
    throw systemError(n, 'bind', host, port);
  }
  return { handle, fd: handle.fd, port: out.port! };
}
