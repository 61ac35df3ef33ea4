// One soak client process: for each kind, `lanes` loops run scenarios one after another, chosen by weight with the
// lane's seeded randomness, until the deadline; then it reports its counters to the orchestrator and exits.
// Running clients in their own processes keeps them off the servers' event loops (and off each other's).
import { ECHO_SCENARIOS } from './echo.js';
import { HTTP_SCENARIOS, NODE_HTTP_SCENARIOS, setHttpSeed } from './http.js';
import { MEMCACHED_SCENARIOS, forgetModel } from './memcached.js';
import { Failure } from './peer.js';
import { KNOWN_BUGS } from './known-bugs.js';
import { FAILURE_SAMPLES_MAX, KINDS, Rng, mixSeed, newCounters, type ClientInit, type ClientMessage, type Kind, type KindCounters } from './proto.js';
import type { Lane, Scenario } from './lane.js';

const init = JSON.parse(process.argv[2]!) as ClientInit;
const send = (m: ClientMessage) => process.send?.(m);
const counters = Object.fromEntries(KINDS.map((k) => [k, newCounters()])) as Record<Kind, KindCounters>;
const SCENARIOS: Record<Kind, readonly (readonly [string, Scenario, number])[]> = { echo: ECHO_SCENARIOS, memcached: MEMCACHED_SCENARIOS, http: HTTP_SCENARIOS, 'node-http': NODE_HTTP_SCENARIOS };
let stopping = false;
process.on('message', (m: { type: string }) => { if (m.type === 'stop') stopping = true; });
// the orchestrator gone: do not outlive it
process.on('disconnect', () => { stopping = true; setTimeout(() => process.exit(0), 2000).unref(); });
setHttpSeed(init.seed);

function record(kind: Kind, scenario: string, where: string, e: unknown): void {
  const c = counters[kind];
  c.failures++;
  const msg = e instanceof Failure ? e.message : `client error: ${(e as Error)?.stack ?? String(e)}`;
  const bug = e instanceof Failure ? KNOWN_BUGS.find((b) => b.matches(kind, scenario, msg)) : undefined;
  if (bug) c.knownBugs[bug.id] = (c.knownBugs[bug.id] ?? 0) + 1;
  if (c.failureSamples.length < FAILURE_SAMPLES_MAX) c.failureSamples.push(`${new Date().toISOString()} ${where} ${scenario}: ${msg}${bug ? ` [known bug ${bug.id}]` : ''}`);
}

async function runLane(kind: Kind, i: number): Promise<void> {
  const port = init.ports[kind]!;
  const name = `c${init.index}.${kind}.${i}`;
  const lane: Lane = { name, rng: new Rng(mixSeed(init.seed, init.index, kind, i)), c: counters[kind], host: init.host, port, stallMaxS: init.stallMaxS, stopping: () => stopping, peers: new Set() };
  const table = SCENARIOS[kind].map(([n, s, w]) => [[n, s], w] as const);
  // every scenario once first (each lane from its own offset), so even a short run covers them all; then by weight
  const first = SCENARIOS[kind].map(([n, s]) => [n, s] as const), offset = init.index * (init.lanes[kind] ?? 1) + i;
  for (let k = 0; !stopping && Date.now() < init.deadline; k++) {
    const [scName, scenario] = k < first.length ? first[(offset + k) % first.length]! : lane.rng.weighted<readonly [string, Scenario]>(table);
    lane.c.scenarios[scName] = (lane.c.scenarios[scName] ?? 0) + 1;
    try {
      await scenario(lane);
    } catch (e) {
      record(kind, scName, name, e);
      if (kind === 'memcached') forgetModel(lane);
      for (const p of lane.peers) if (!p.closed) p.reset();
    }
    lane.peers.clear();
  }
}

const progress = setInterval(() => send({ type: 'progress', counters }), 5000);
const lanes: Promise<void>[] = [];
for (const kind of KINDS) for (let i = 0; i < (init.lanes[kind] ?? 0); i++) lanes.push(runLane(kind, i));
await Promise.all(lanes);
clearInterval(progress);
send({ type: 'final', counters });
process.disconnect?.();
