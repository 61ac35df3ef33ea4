// What a scenario runs with: its lane's randomness, counters and server address.
import type { KindCounters } from './proto.js';
import { Rng } from './proto.js';
import { Failure, Peer } from './peer.js';

export interface Lane {
  readonly name: string;
  readonly rng: Rng;
  readonly c: KindCounters;
  readonly host: string;
  readonly port: number;
  readonly stallMaxS: number;
  /** True once the orchestrator asked to stop early. */
  stopping: () => boolean;
  /** Connections of the scenario running: reset when it fails, so none outlives its scenario. */
  readonly peers: Set<Peer>;
}

/** A scenario: opens its connection(s), runs, verifies; throws Failure on a fault of the server. */
export type Scenario = (lane: Lane) => Promise<void>;

/** Opens a counted connection. */
export async function open(lane: Lane): Promise<Peer> {
  const p = await Peer.connect(lane.host, lane.port);
  lane.c.connections++;
  lane.peers.add(p);
  return p;
}

/** Compares received bytes with the expected ones; a mismatch names the first differing offset. */
export function verify(lane: Lane, got: Buffer, want: Buffer, what: string, at = 0): void {
  if (got.length !== want.length || !got.equals(want)) {
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    throw new Failure(`${what}: ${got.length === want.length ? 'corrupt' : `length ${got.length}, want ${want.length}`} at byte ${at + i} (got ${got.subarray(i, i + 8).toString('hex')}, want ${want.subarray(i, i + 8).toString('hex')})`);
  }
  lane.c.bytesVerified += got.length;
}

export { Failure, Peer };
