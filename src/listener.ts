// Listening sockets, optionally partitioned: one address, one reuseport group of N members, a classic-BPF
// program that picks the member owning the CPU that received the SYN (MegaPipe's partitioned listening socket).
import * as net from 'node:net';
import { closeFd, listenGroup, socketsAvailable } from './sockets.js';
import { bindTcp, type TcpHandle } from './portable/tcp-bind.js';
import { MegapipeError, MpCode, argError, fromNode, rangeError } from './errors.js';
import { bounds } from './limits.js';
import { checkOptions, optionKeys } from './options.js';

export interface ListenOptions {
  /** Address literal to bind (default 127.0.0.1). `localhost` is taken as 127.0.0.1. */
  host?: string;
  /** Port (default 0: the kernel picks one, shared by every member). */
  port?: number;
  /** Accept backlog per member (default 4096, capped by net.core.somaxconn). */
  backlog?: number;
  /**
   * Partitions: one CPU list per member, disjoint. A SYN received on a CPU in `partitions[i]` is queued on
   * member i; a CPU in no list is spread by the kernel's hash. Absent or `[]`: one member, one shared queue.
   * `partitions: [[0], [1]]` gives two members, one per core.
   */
  partitions?: number[][];
  /** Members without CPU steering (the shared-queue baseline with N reuseport members hashing). Default 1. */
  members?: number;
  /**
   * TCP_DEFER_ACCEPT, seconds (default 0: off): a connection is queued for accept only once its first bytes have
   * arrived, so its accept and its first receive come in one wake-up; one that stays silent is accepted after about
   * this long. Only for protocols where the client speaks first (HTTP). Ignored by the portable backend.
   */
  deferAccept?: number;
  /**
   * With an IPv6 host (`::`), accept IPv6 only (IPV6_V6ONLY), as node's `ipv6Only`; default false: `::` also accepts
   * IPv4 (dual-stack, the system's default).
   */
  ipv6Only?: boolean;
  /**
   * SO_REUSEPORT on a one-member listener, so that other sockets (other processes) may bind the same address and
   * port and the kernel spreads connections among them, as node's `reusePort` (node 22.12+); default false: a second
   * bind fails with EADDRINUSE. Listeners of more than one member always set it (it is what joins them), but without
   * reusePort they too fail with EADDRINUSE on a port already listened on. Not with `partitions` (a TypeError: their
   * CPU steering cannot be shared). Without the addon (node's own TCP handle) it is not set.
   */
  reusePort?: boolean;
}

/** A bound, listening address: one or more members, each registered by one channel. Close it when done. */
export class Listener {
  readonly host: string;
  readonly port: number;
  /** Member sockets, in reuseport join order (the cBPF index order). Empty when only `server` exists. */
  readonly fds: readonly number[];
  /** CPU list of each member (empty list: not steered). */
  readonly partitions: readonly (readonly number[])[];
  /** A node:net server, when the addon is unavailable (portable backend only). */
  readonly server: net.Server | undefined;
  #closed = false;
  // without the addon: node's TCP handle of the bound socket (fds[0]); a channel of this thread may take it once
  #handle: TcpHandle | undefined;
  #backlog = 0;
  #handleTaken = false;

  constructor(host: string, port: number, fds: number[], partitions: number[][], server?: net.Server) {
    this.host = host; this.port = port; this.fds = fds; this.partitions = partitions; this.server = server;
  }

  /** @internal A listener bound by node's own TCP handle (listen() without the addon): one member, not yet listening. */
  static fromHandle(host: string, bound: { handle: TcpHandle; fd: number; port: number }, backlog: number): Listener {
    const l = new Listener(host, bound.port, [bound.fd], [[]]);
    l.#handle = bound.handle;
    l.#backlog = backlog;
    return l;
  }

  /**
   * @internal The bound socket's TCP handle, for the portable channel to listen on (once: the server that takes it owns
   * it), or undefined (native members, another thread's view, or taken already).
   */
  takeHandle(): { handle: TcpHandle; backlog: number } | undefined {
    if (this.#handleTaken || this.#handle === undefined) return undefined;
    this.#handleTaken = true;
    return { handle: this.#handle, backlog: this.#backlog };
  }

  get closed(): boolean { return this.#closed; }

  /**
   * The member a channel with `cpuMask` should register: the member whose partition equals the mask's CPU set;
   * without a mask, member 0 (only valid when the listener has one member or is not partitioned).
   */
  memberFor(cpuMask?: readonly number[]): number {
    if (cpuMask === undefined || cpuMask.length === 0) return 0;
    const want = [...cpuMask].sort((a, b) => a - b).join(',');
    const i = this.partitions.findIndex((p) => [...p].sort((a, b) => a - b).join(',') === want);
    if (i < 0) throw rangeError('cpuMask', `the CPU set of a partition of ${this.host}:${this.port} (${JSON.stringify(this.partitions)})`, `[${want}]`);
    return i;
  }

  /**
   * Closes every member together (closing one member of a steered group would reorder the group's indices).
   * Connections still queued in a member's accept queue are reset by the kernel: drain (stop accepting is not
   * enough — unregister after the queue is empty, see `serve`) before closing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handle) this.#handle.close();   // (a no-op when the server that took it has closed it already)
    else for (const fd of this.fds) closeFd(fd);
    this.server?.close();
  }
}

function resolveHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (net.isIP(host) === 0) throw argError('host', 'an IPv4 or IPv6 address literal or "localhost"', host);
  return host;
}

const LISTEN_OPTIONS = optionKeys<ListenOptions>({ host: true, port: true, backlog: true, partitions: true, members: true, deferAccept: true, ipv6Only: true, reusePort: true });

// The options both listen functions take: checked, with their defaults.
function addressArgs(options: ListenOptions): { host: string; port: number; backlog: number; ipv6Only: boolean; reusePort: boolean } {
  checkOptions(options, LISTEN_OPTIONS);
  if (options.host !== undefined && typeof options.host !== 'string') throw argError('host', 'a string (an IPv4 or IPv6 address literal or "localhost")', options.host);
  const host = resolveHost(options.host ?? '127.0.0.1');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw rangeError('port', 'an integer in 0..65535', port);
  const backlog = options.backlog ?? bounds.backlogDefault;
  if (!Number.isInteger(backlog) || backlog < 1 || backlog > bounds.backlogMax) throw rangeError('backlog', `an integer in 1..${bounds.backlogMax}`, backlog);
  for (const k of ['ipv6Only', 'reusePort'] as const) if (options[k] !== undefined && typeof options[k] !== 'boolean') throw argError(k, 'a boolean', options[k]);
  return { host, port, backlog, ipv6Only: options.ipv6Only ?? false, reusePort: options.reusePort ?? false };
}

/**
 * Opens a listening address (see ListenOptions). Synchronous. An unknown option is a TypeError; an address that cannot
 * be bound throws as node does (code `EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`, with syscall, address and port).
 * Without the addon the address is bound by node's own TCP handle (one member: `partitions`, `members` and
 * `deferAccept` are ignored) and listens from the moment a channel registers it.
 */
export function listen(options: ListenOptions = {}): Listener {
  const { host, port, backlog, ipv6Only, reusePort } = addressArgs(options);
  const partitions = options.partitions ?? [];
  if (!Array.isArray(partitions)) throw argError('partitions', 'an array of CPU lists', partitions);
  const seen = new Set<number>();
  for (const [i, p] of partitions.entries()) {
    if (!Array.isArray(p) || p.length === 0) throw argError(`partitions[${i}]`, 'a non-empty array of CPU numbers', p);
    for (const cpu of p) {
      if (!Number.isInteger(cpu) || cpu < 0 || cpu > bounds.cpuMax) throw rangeError(`partitions[${i}]`, `CPU numbers in 0..${bounds.cpuMax}`, cpu);
      if (seen.has(cpu)) throw rangeError('partitions', 'disjoint CPU lists', `CPU ${cpu} twice`);
      seen.add(cpu);
    }
  }
  const deferAccept = options.deferAccept ?? 0;
  if (!Number.isInteger(deferAccept) || deferAccept < 0 || deferAccept > 3600) throw rangeError('deferAccept', 'an integer number of seconds in 0..3600', deferAccept);
  const members = partitions.length > 0 ? partitions.length : options.members ?? 1;
  if (partitions.length > bounds.listenerMembers) throw rangeError('partitions', `at most ${bounds.listenerMembers} CPU lists`, partitions.length);
  if (!Number.isInteger(members) || members < 1 || members > bounds.listenerMembers) throw rangeError('members', `an integer in 1..${bounds.listenerMembers}`, members);
  // the CPU steering is one program per SO_REUSEPORT group, numbering its members in join order: another listener
  // joining the group would replace it, or be steered to members not its own
  if (reusePort && partitions.length > 0) throw argError('reusePort', 'false with partitions (their CPU steering cannot be shared with another listener)', reusePort);
  let cpuToMember: Int32Array | null = null;
  if (partitions.length > 0) {
    cpuToMember = new Int32Array(Math.max(...seen) + 1).fill(-1);
    partitions.forEach((p, i) => { for (const cpu of p) cpuToMember![cpu] = i; });
  }
  // (the channel that registers it is portable, and createChannel gives the fallback's one warning)
  if (!socketsAvailable) {
    return Listener.fromHandle(host, bindTcp(host, port, net.isIPv6(host), ipv6Only), backlog);
  }
  const r = listenGroup(host, port, members, backlog, reusePort, cpuToMember, deferAccept, ipv6Only);
  const parts = partitions.length > 0 ? partitions.map((p) => [...p]) : Array.from({ length: members }, () => [] as number[]);
  return new Listener(host, r.port, r.fds, parts, undefined);
}

/**
 * A listener over node:net, for platforms without the addon (one member: `partitions`, `members` and `deferAccept`
 * are ignored; node honours `reusePort` from 22.12 on). Bad arguments throw at once, as `listen`'s do; an address that
 * cannot be bound rejects with `listen`'s error.
 */
export function listenPortable(options: ListenOptions = {}): Promise<Listener> {
  const { host, port, backlog, ipv6Only, reusePort } = addressArgs(options);
  const server = net.createServer({ noDelay: true, pauseOnConnect: true } as net.ServerOpts);
  return new Promise((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException): void => reject(fromNode(e, host, port));
    server.once('error', failed);
    server.listen({ host, port, backlog, ipv6Only, reusePort } as net.ListenOptions, () => {
      server.off('error', failed);
      resolve(new Listener(host, (server.address() as net.AddressInfo).port, [], [[]], server));
    });
  });
}
