// The transports the memcached conformance suites run on: io_uring channels under serve() (what the CLI ships and the
// benchmarks measure) first, node:net second. The io_uring variant is skipped, with the reason printed, only when
// io_uring is unavailable.
import { startServer, type ServerHandle, type ServerOptions } from '../apps/memcached/server.js';
import { skipFor } from './helpers.js';

export type McTransport = 'channels' | 'net';
export const TRANSPORTS: readonly McTransport[] = ['channels', 'net'];

/** Suite-name suffix of a transport. */
export function transportLabel(t: McTransport): string {
  return t === 'channels' ? 'io_uring channels, serve()' : 'node:net';
}

/** `describe` skip option for a transport (false = run). */
export function transportSkip(t: McTransport): string | false {
  return t === 'channels' ? skipFor('uring') : false;
}

/** startServer on `t`; the channels transport is pinned to io_uring (no silent fallback to the portable backend). */
export function startOn(t: McTransport, opts: Omit<ServerOptions, 'transport' | 'backend'> = {}): Promise<ServerHandle> {
  return startServer(t === 'channels' ? { ...opts, transport: 'channels', backend: 'uring' } : { ...opts, transport: 'net' });
}
