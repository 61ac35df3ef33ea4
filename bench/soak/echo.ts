// Echo scenarios (bin/echo.ts under serve()): the stream that comes back must be the stream sent, byte for byte.
// Each connection sends a ByteStream and verifies with a second one from the same seed.
import { ByteStream } from './proto.js';
import { sleep } from './peer.js';
import { open, verify, type Lane, type Peer, type Scenario } from './lane.js';

const MIB = 1 << 20;

/** Sends `n` bytes of `gen` in messages of log-uniform sizes (1 B … 1 MiB); without `wait`, only queues them. */
async function sendBytes(lane: Lane, p: Peer, gen: ByteStream, n: number, wait: boolean): Promise<void> {
  while (n > 0) {
    const k = Math.min(n, lane.rng.logInt(1, MIB));
    await p.write(gen.next(k), 'echo send', wait);
    lane.c.bytesSent += k;
    n -= k;
  }
}

/** Reads and verifies `n` echoed bytes. */
async function expectBytes(lane: Lane, p: Peer, ver: ByteStream, n: number, at: { off: number }): Promise<void> {
  while (n > 0) {
    const got = await p.read(Math.min(n, p.available || 1), `echo read at byte ${at.off}`);
    verify(lane, got, ver.next(got.length), 'echo', at.off);
    at.off += got.length;
    n -= got.length;
  }
}

/** Closes as a well-behaved client: FIN, then the server's EOF after everything. */
async function finish(lane: Lane, p: Peer): Promise<void> {
  p.end();
  await p.expectEof('echo close');
  lane.c.clean++;
}

/** Messages of 1 B … 1 MiB, each echoed before the next (or up to 4 in flight). */
const normal: Scenario = async (lane) => {
  const p = await open(lane);
  const seed = lane.rng.seed(), gen = new ByteStream(seed), ver = new ByteStream(seed), at = { off: 0 };
  const depth = lane.rng.chance(0.5) ? 1 : lane.rng.int(2, 4);
  for (let left = lane.rng.int(1, 24); left > 0;) {
    const batch = Math.min(left, depth);
    let total = 0;
    for (let i = 0; i < batch; i++) { const k = lane.rng.logInt(1, MIB); total += k; await p.write(gen.next(k), 'echo send'); lane.c.bytesSent += k; }
    await expectBytes(lane, p, ver, total, at);
    lane.c.ops += batch;
    left -= batch;
  }
  await finish(lane, p);
};

/** A reset at a random moment: mid-send, with echoes unread (the server holding queued bytes), or mid-echo. */
const reset: Scenario = async (lane) => {
  const p = await open(lane);
  const seed = lane.rng.seed(), gen = new ByteStream(seed), ver = new ByteStream(seed), at = { off: 0 };
  const total = lane.rng.logInt(1, 4 * MIB);
  const mode = lane.rng.int(0, 2);
  if (mode === 1) p.pause();                                    // the server's echo queues up
  await sendBytes(lane, p, gen, total, false);
  if (mode === 2) await expectBytes(lane, p, ver, lane.rng.int(0, total), at);   // mid-echo
  await sleep(lane.rng.int(0, mode === 1 ? 1500 : 200));
  // what did arrive is checked too
  if (mode !== 1) { const k = Math.min(p.available, total - at.off); if (k > 0) await expectBytes(lane, p, ver, k, at); }
  p.reset();
  lane.c.resets++;
};

/** Zero window: stop reading, send 4–12 MiB, stay stalled for seconds, then read and verify all of it. */
const stall: Scenario = async (lane) => {
  const p = await open(lane);
  const seed = lane.rng.seed(), gen = new ByteStream(seed), ver = new ByteStream(seed), at = { off: 0 };
  const total = lane.rng.int(4 * MIB, 12 * MIB);
  p.pause();
  await sendBytes(lane, p, gen, total, false);
  await sleep(lane.rng.int(1000, lane.stallMaxS * 1000));
  p.resume();
  await expectBytes(lane, p, ver, total, at);
  lane.c.ops++;
  await finish(lane, p);
};

/** Half-close: send, end() at once, then read everything back and the server's EOF. */
const halfClose: Scenario = async (lane) => {
  const p = await open(lane);
  const seed = lane.rng.seed(), gen = new ByteStream(seed), ver = new ByteStream(seed), at = { off: 0 };
  const total = lane.rng.logInt(1, 2 * MIB);
  await sendBytes(lane, p, gen, total, false);
  p.end();
  await expectBytes(lane, p, ver, total, at);
  lane.c.ops++;
  await p.expectEof('echo half-close');
  lane.c.clean++;
};

/** Slow drip: 1–300 bytes, one byte per write, 0–15 ms apart, echoes read as they come. */
const drip: Scenario = async (lane) => {
  const p = await open(lane);
  const seed = lane.rng.seed(), gen = new ByteStream(seed), ver = new ByteStream(seed), at = { off: 0 };
  const n = lane.rng.int(1, 300);
  for (let i = 0; i < n; i++) {
    await p.write(gen.next(1), 'echo drip');
    lane.c.bytesSent++;
    await sleep(lane.rng.int(0, 15));
    const k = p.available;
    if (k > 0) await expectBytes(lane, p, ver, k, at);
  }
  await expectBytes(lane, p, ver, n - at.off, at);
  lane.c.ops++;
  await finish(lane, p);
};

export const ECHO_SCENARIOS: readonly (readonly [string, Scenario, number])[] = [
  ['normal', normal, 50], ['reset', reset, 15], ['stall', stall, 8], ['half-close', halfClose, 15], ['drip', drip, 12],
];
