// The transports the memcached conformance suites run on: io_uring channels under serve() (what the CLI ships and the
// benchmarks measure) first, node:net second. The io_uring variant is skipped, with the reason printed, only when
// io_uring is unavailable.
import { after, before } from 'node:test';
import { startServer, type ServerHandle, type ServerOptions } from '../apps/memcached/server.js';
import { skipFor } from './helpers.js';
import { startReferenceMemcached, type RefServer } from './memcached-testkit.js';

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

/**
 * A differential suite's two servers, started before its tests and closed after them: Debian's memcached with `refArgs`
 * (`ref` null when it is not installed: the tests skip) and ours on `t` with `opts`.
 */
export function referencePair(t: McTransport, refArgs: string[], opts: Omit<ServerOptions, 'transport' | 'backend'>): { ref: RefServer | null; ours: ServerHandle } {
  const pair = { ref: null as RefServer | null, ours: undefined as unknown as ServerHandle };
  before(async () => {
    pair.ref = await startReferenceMemcached(refArgs);
    pair.ours = await startOn(t, opts);
  });
  after(async () => {
    const closed = await Promise.allSettled([pair.ours?.close(), pair.ref?.close()]);
    for (const c of closed) if (c.status === 'rejected') throw c.reason;
  });
  return pair;
}
