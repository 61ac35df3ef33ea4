// megapipe/net's Server: node:net's Server whose TCP listen() accepts through a channel. The server object is node's
// own (net.Server: address(), close(), getConnections(), ref/unref, maxConnections and the events all stay node's);
// what changes is its handle: instead of libuv's TCP handle it gets a ListenHandle, a channel's registration of a
// listening socket, and each accepted lwsocket is emitted as a megapipe Socket through 'connection'. So any
// net.Server — http, https, tls, Express, Fastify, ws — can be served: adopt() is the one path (listen, attach,
// serve()'s workers and the register hook all come here).
import * as net from 'node:net';
import cluster from 'node:cluster';
import { lookup } from 'node:dns';
import type { Channel } from '../channel.js';
import type { MpEvent } from '../event.js';
import { listen as listenGroup, type Listener } from '../listener.js';
import type { ChannelServer } from '../server/serve-channel.js';
import type { WorkerContext, WorkerSetup } from '../server/serve.js';
import { fallbackWarned, kMpEvent, loopUse, netError, route, threadChannel, uringUsable, type Endpoint } from './link.js';
import { Socket } from './socket.js';

/** node:net.Server's fields this module reads and sets (internal to node, stable since v0.x). */
interface ServerInternals {
  _handle: unknown;
  _connections: number;
  _connectionKey?: string;
  _unref: boolean;
  // bumped by listen() and close(): a host-name lookup started under an older id was overtaken and binds nothing
  _listeningId: number;
  maxConnections: number | undefined;
  // SO_KEEPALIVE for every accepted connection, TCP_KEEPIDLE in whole seconds (0: the kernel's)
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  allowHalfOpen: boolean;
  pauseOnConnect: boolean;
  highWaterMark?: number;
}

/** A TCP listen() request, as node:net normalizes its arguments. */
export interface TcpListen {
  port: number;
  /** Undefined: every address ('::', or '0.0.0.0' without IPv6). A name is resolved with dns.lookup. */
  host: string | undefined;
  backlog: number;
  signal?: AbortSignal;
  /** IPV6_V6ONLY on '::' (node's ipv6Only). */
  ipv6Only?: boolean;
  /** SO_REUSEPORT: other sockets may bind the same port (node's reusePort, node 22.12+). */
  reusePort?: boolean;
}

/** node:net's original Server.prototype.listen (before megapipe/register replaces it). */
export const nodeListen = net.Server.prototype.listen;

// maxConnections as the running node reads it: node 20 and earlier take 0 (any falsy value) for "no limit"; node 21
// and later (nodejs/node#48276) refuse every connection at 0. A transparent server must not change what 0 means
export const MAX_ZERO_REFUSES = Number(process.versions.node.split('.')[0]) >= 21;
function overLimit(max: number | undefined, open: number): boolean {
  return (MAX_ZERO_REFUSES ? max != null : !!max) && open >= max!;
}

/**
 * A server's listening handle on a channel: what node:net's Server finds in `_handle` (getsockname, close, ref,
 * unref), and the endpoint of its listener's events. Accepted connections become Sockets emitted as 'connection'.
 */
class ListenHandle implements Endpoint {
  readonly #server: net.Server & ServerInternals;
  readonly #ch: Channel;
  readonly #listener: Listener;
  readonly #owns: boolean;
  readonly #lh: number;
  readonly #track: boolean;
  #unrefd = false;
  #closed = false;
  /** Connections accepted through this handle, and (with `track`: serve()'s, whose deadline destroys them) those
   * still open. */
  accepted = 0;
  readonly open = new Set<Socket>();

  constructor(server: net.Server, ch: Channel, listener: Listener, owns: boolean, member: number, lwsocket: boolean, track: boolean) {
    this.#server = server as net.Server & ServerInternals;
    this.#ch = route(ch);
    this.#listener = listener;
    this.#owns = owns;
    this.#track = track;
    this.#lh = ch.register(listener, this, { member });
    ch.accept(this.#lh, { lwsocket });
  }

  /** node:net's address(): fills `out` with the bound address; 0 (no error). */
  getsockname(out: Record<string, unknown>): number {
    out.address = this.#listener.host;
    out.family = net.isIPv6(this.#listener.host) ? 'IPv6' : 'IPv4';
    out.port = this.#listener.port;
    return 0;
  }

  /**
   * Stops accepting (connections already accepted stay open) and closes the listening socket if this owns it. The
   * channel lets go of its descriptor of the socket only at the listener's disconnect event: the server's 'close'
   * waits for it, so that once 'close' is emitted the port refuses connections, as with node:net.
   */
  close(cb?: () => void): void {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#unrefd) { this.#unrefd = false; loopUse(this.#ch, 1); }
      let pending = false;
      try {
        if (this.#ch.isOpen(this.#lh)) { this.#ch.unregister(this.#lh); this.#ch.flush(); pending = this.#ch.isOpen(this.#lh); }
      } catch { /* the channel is closed */ }
      if (this.#owns) this.#listener.close();
      if (pending) {
        // shadows net.Server.prototype._emitCloseIfDrained until the disconnect event
        (this.#server as unknown as { _emitCloseIfDrained(): void })._emitCloseIfDrained = () => {};
      }
    }
    if (cb !== undefined) process.nextTick(cb);
  }

  ref(): void { if (this.#unrefd && !this.#closed) { this.#unrefd = false; loopUse(this.#ch, 1); } }
  unref(): void { if (!this.#unrefd && !this.#closed) { this.#unrefd = true; loopUse(this.#ch, -1); } }
  hasRef(): boolean { return !this.#unrefd; }

  /** @internal */
  [kMpEvent](ev: MpEvent): void {
    // listener-error (table full, EMFILE): the channel falls back or resumes by itself; disconnect: unregistered
    if (ev.type === 'accept') this.#accept(ev.handle);
    else if (ev.type === 'disconnect' && this.#closed) {
      const server = this.#server as unknown as { _emitCloseIfDrained(): void };
      if (Object.hasOwn(server, '_emitCloseIfDrained')) {
        delete (server as { _emitCloseIfDrained?: unknown })._emitCloseIfDrained;
        server._emitCloseIfDrained();
      }
    }
  }

  #accept(h: number): void {
    const server = this.#server;
    if (this.#closed) { this.#ch.disconnect(h, true); return; }
    if (overLimit(server.maxConnections, server._connections)) {
      // as node:net: 'drop' names the refused connection's ends, and the connection is closed (the client reads EOF,
      // or a reset if it had sent bytes). The addresses are read only for a listener (a syscall each on an lwsocket)
      const data = server.listenerCount('drop') > 0 ? this.#dropData(h) : undefined;
      this.#ch.disconnect(h, true);
      server.emit('drop', data);
      return;
    }
    const socket = Socket.accepted(this.#ch, h, server.allowHalfOpen, server.pauseOnConnect, server.highWaterMark, server);
    // net.createServer({ keepAlive, keepAliveInitialDelay }) (and http's): as node's onconnection
    if (server.keepAlive === true) socket.setKeepAlive(true, (server.keepAliveInitialDelay ?? 0) * 1000);
    server._connections++;
    this.accepted++;
    if (this.#track) {
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
    }
    server.emit('connection', socket);
  }

  // node:net's 'drop' argument: { localAddress, localPort, localFamily, remoteAddress, remotePort, remoteFamily } (a
  // side the kernel cannot tell now is left undefined, as node leaves what getsockname/getpeername did not fill in)
  #dropData(h: number): net.DropArgument {
    const side = (which: 'local' | 'remote') => { try { return this.#ch.socketAddress(h, which); } catch { return undefined; } };
    const local = side('local'), remote = side('remote');
    return {
      localAddress: local?.address, localPort: local?.port, localFamily: local?.family,
      remoteAddress: remote?.address, remotePort: remote?.port, remoteFamily: remote?.family,
    } as net.DropArgument;
  }
}

/** node:net's error for a second listen() on a server already listening. */
function alreadyListening(): Error {
  return Object.assign(new Error('Listen method has been called more than once without closing.'), { code: 'ERR_SERVER_ALREADY_LISTEN' });
}

/**
 * Makes `server` accept `listener`'s connections (member `member`) through `channel`: the server is listening from
 * now on ('listening' follows on the next tick). `owns`: close() closes the listener too.
 */
export function adopt(server: net.Server, channel: Channel, listener: Listener, options: { member?: number; lwsocket?: boolean; owns: boolean; track?: boolean }): ListenHandle {
  const s = server as net.Server & ServerInternals;
  if (s._handle) throw alreadyListening();
  const handle = new ListenHandle(server, channel, listener, options.owns, options.member ?? 0, options.lwsocket ?? true, options.track === true);
  s._handle = handle;
  s._connectionKey = `${net.isIPv6(listener.host) ? 6 : 4}:${listener.host}:${listener.port}`;
  if (s._unref) handle.unref();
  process.nextTick(() => { if (s._handle === handle) server.emit('listening'); });
  return handle;
}

/** listen()'s arguments as node:net reads them; null when they ask for something other than TCP (a path, a handle, an fd). */
export function tcpListenArgs(args: unknown[]): { tcp: TcpListen | null; cb: (() => void) | undefined } {
  const a = [...args];
  const cb = typeof a[a.length - 1] === 'function' ? a.pop() as () => void : undefined;
  const first = a[0];
  if (first !== null && typeof first === 'object') {
    const o = first as { port?: unknown; host?: unknown; backlog?: unknown; path?: unknown; fd?: unknown; handle?: unknown; _handle?: unknown; signal?: AbortSignal; ipv6Only?: unknown; reusePort?: unknown };
    if (o.path !== undefined || o.fd !== undefined || o.handle !== undefined || o._handle !== undefined) return { tcp: null, cb };
    // (`exclusive` needs nothing: a megapipe listener is never shared with cluster workers)
    return { tcp: { port: portArg(o.port), host: typeof o.host === 'string' ? o.host : undefined, backlog: toNumber(o.backlog) ?? 511, signal: o.signal, ipv6Only: o.ipv6Only === true, reusePort: o.reusePort === true }, cb };
  }
  if (typeof first === 'string' && toNumber(first) === undefined) return { tcp: null, cb };   // an IPC path
  const host = typeof a[1] === 'string' ? a[1] : undefined;
  const backlog = toNumber(host !== undefined ? a[2] : a[1]) ?? 511;
  return { tcp: { port: portArg(first), host, backlog }, cb };
}

function toNumber(x: unknown): number | undefined {
  const n = typeof x === 'number' ? x : typeof x === 'string' && x.trim() !== '' ? Number(x) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function portArg(p: unknown): number {
  if (p === undefined || p === null) return 0;
  const n = toNumber(p);
  if (n === undefined || !Number.isInteger(n) || n > 65535) {
    throw Object.assign(new RangeError(`options.port should be >= 0 and < 65536. Received ${typeof p} (${String(p)}).`), { code: 'ERR_SOCKET_BAD_PORT' });
  }
  return n;
}

/** Binds `tcp` through megapipe (this thread's channel) and makes `server` accept from it; errors are 'error' events. */
export function listenTcp(server: net.Server, tcp: TcpListen, cb?: () => void): void {
  const s = server as net.Server & ServerInternals;
  if (s._handle) throw alreadyListening();
  if (cb !== undefined) server.once('listening', cb);
  if (tcp.signal !== undefined) {
    if (tcp.signal.aborted) { process.nextTick(() => server.close()); return; }
    tcp.signal.addEventListener('abort', () => server.close(), { once: true });
  }
  // as node's listen(): a listen() or close() made while the host name is being resolved overtakes this one
  const id = s._listeningId = (typeof s._listeningId === 'number' ? s._listeningId : 0) + 1;
  const bind = (address: string, fallback: boolean): void => {
    let listener: Listener;
    try {
      listener = listenGroup({ host: address, port: tcp.port, backlog: Math.max(1, Math.min(tcp.backlog, 65535)), ipv6Only: tcp.ipv6Only === true, reusePort: tcp.reusePort === true });
    } catch (e) {
      const x = e as { code?: string; errno?: number };
      if (fallback && (x.code === 'EAFNOSUPPORT' || x.code === 'EADDRNOTAVAIL')) { bind('0.0.0.0', false); return; }
      const err = typeof x.code === 'string' && typeof x.errno === 'number'
        ? netError(x.code, 'listen', { errno: x.errno, address, port: tcp.port, describe: true })
        : e;
      process.nextTick(() => server.emit('error', err));
      return;
    }
    adopt(server, threadChannel(), listener, { owns: true });
  };
  if (tcp.host === undefined) bind('::', tcp.ipv6Only !== true);
  else if (net.isIP(tcp.host) !== 0) {
    // as node's, which looks up even an address literal: bound on the next tick (a close() before then wins)
    const host = tcp.host;
    process.nextTick(() => { if (id === s._listeningId) bind(host, false); });
  } else {
    lookup(tcp.host, (err, address) => {
      if (id !== s._listeningId) return;
      if (err) server.emit('error', err);
      else bind(address, false);
    });
  }
}

let noticed = false;
function notice(why: string): void {
  if (noticed) return;
  noticed = true;
  process.stderr.write(`megapipe/net: ${why}: this listen() stays on node:net\n`);
}

/**
 * listen() for any net.Server: TCP through megapipe when io_uring is usable; anything else (an IPC path, a handle, an
 * fd, a cluster worker, no io_uring) through node:net's own listen(), with a one-line notice when `quiet` is false
 * (none when the portable backend's process warning has given the reason).
 */
export function listenAny(server: net.Server, args: unknown[], quiet: boolean): net.Server {
  const { tcp, cb } = tcpListenArgs(args);
  let why: string | null = null;
  if (tcp === null) why = 'an IPC path, a handle or an fd is not a TCP address';
  else if (cluster.isWorker) why = 'cluster workers listen through the primary';
  else if (!uringUsable()) why = fallbackWarned() ? '' : 'io_uring is not available';
  if (why !== null) {
    // ('': the process warning of the portable backend has said why already)
    if (!quiet && why !== '') notice(why);
    return Reflect.apply(nodeListen, server, args) as net.Server;
  }
  listenTcp(server, tcp!, cb);
  return server;
}

/**
 * A net.Server that accepts through megapipe: node's Server (every method and event is node's) whose TCP listen()
 * binds through this thread's channel; connections are megapipe Sockets. Without io_uring it is node:net's.
 */
export class Server extends net.Server {
  override listen(...args: unknown[]): this {
    listenAny(this, args, true);
    return this;
  }
}

/** node:net's createServer([options][, connectionListener]), accepting through megapipe. */
export function createServer(options?: net.ServerOpts | ((socket: net.Socket) => void), connectionListener?: (socket: net.Socket) => void): Server {
  return new Server(options as net.ServerOpts, connectionListener);
}

export interface AttachOptions {
  port?: number;
  /** Default: every address ('::'). */
  host?: string;
  backlog?: number;
}

/**
 * Serves an existing, not yet listening net.Server (http, https, tls, Express's, Fastify's `server`, ws's) on megapipe
 * on this thread: it listens on `options` as listen() would (cb on 'listening'), its connections are megapipe
 * Sockets handed to it through 'connection'. Returns the server. Without io_uring it listens through node:net.
 */
export function attach<S extends net.Server>(server: S, options: AttachOptions = {}, cb?: () => void): S {
  const args: unknown[] = [{ port: options.port ?? 0, host: options.host, backlog: options.backlog }];
  if (cb !== undefined) args.push(cb);
  listenAny(server, args, true);
  return server;
}

/**
 * A serve() worker module's default export that serves a node server on every worker: `make` builds the worker's
 * server (not listening), which then accepts the worker's listener member through the worker's channel.
 * `export default serveServer(() => http.createServer(app))`, then `serve({ module, port, workers })`.
 */
export function serveServer(make: (ctx: WorkerContext) => net.Server | Promise<net.Server>): WorkerSetup {
  return async (ctx: WorkerContext): Promise<ChannelServer> => {
    const server = await make(ctx);
    if (!(server instanceof net.Server)) throw new TypeError('serveServer: make() must return a net.Server (http, https, tls, net)');
    const handle = adopt(server, ctx.channel, ctx.listener, { member: ctx.member, lwsocket: ctx.lwsocket, owns: false, track: true });
    return {
      channel: ctx.channel,
      get connections() { return handle.open.size; },
      get accepted() { return handle.accepted; },
      close(deadlineMs = 5000): Promise<void> {
        return new Promise((resolve) => {
          const timer = setTimeout(() => { for (const s of handle.open) s.destroy(); }, deadlineMs);
          // (http.Server.close() also closes its idle keep-alive connections)
          server.close(() => { clearTimeout(timer); resolve(); });
        });
      },
    };
  };
}
