// memcached scenarios (megapipe-memcached under serve()): every reply is checked against a local model of the lane's
// own keys (no other lane touches them). Commands: set, get, multi-get, delete, incr, decr.
//
// A connection the client resets leaves some commands unconfirmed. The server runs one connection's commands in
// order, so what it applied is a prefix of what it received, and a command cut short was not applied. But a
// command wholly sent may be applied *later* — after the client has moved on: the reset only reaches the server
// after the bytes before it, which the other worker, or this one on a later turn, may still be working through
// (memcached does the same). So a key that an unconfirmed, wholly sent mutation touched is retired: the lane checks
// it once (its value must be one of the states that mutation sequence allows, at whatever point the server has
// reached), deletes it, and uses a fresh key name from then on. Reusing the name was this model's bug: a stall
// scenario read back a value of a reset connection's set, applied after the next connection had overwritten it.
import { ByteStream } from './proto.js';
import { sleep } from './peer.js';
import { Failure, open, verify, type Lane, type Peer, type Scenario } from './lane.js';

const KEYS = 24;
/** Keys 0..NUMERIC-1 hold decimal numbers (incr/decr); the others binary values. */
const NUMERIC = 4;
const VALUE_MAX = 512 * 1024;
const TWO64 = 1n << 64n;

type State = null | { bin: Buffer; flags: number } | { num: bigint };

interface Op {
  bytes: Buffer;
  kind: 'set' | 'get' | 'delete' | 'incr' | 'decr';
  keys: number[];
  /** For get: the expected state of each key (in order). */
  expect: State[];
  /** For mutations: the state before and after. */
  before?: State;
  after?: State;
  /** incr/decr's reply. */
  reply?: string;
}

/** A retired key to check once: its value must be one of `states` (a reset connection may still be applying them). */
interface Retired { key: string; states: State[] }

/** The model of one lane's keys: the state of each key under its current name, and the retired names to check. */
export class McModel {
  readonly states: State[] = Array.from({ length: KEYS }, () => null);
  /** Key i's name is `prefix:i.gen[i]`: a new generation after a reset left a mutation of it in flight. */
  readonly gen: number[] = Array.from({ length: KEYS }, () => 0);
  retired: Retired[] = [];
  constructor(readonly prefix: string) {}
  key(i: number): string { return `${this.prefix}:${i}.${this.gen[i]!}`; }
  cur(i: number): State { return this.states[i]!; }
}

function sameState(a: State, b: State): boolean {
  if (a === null || b === null) return a === b;
  if ('num' in a) return 'num' in b && a.num === b.num;
  return 'bin' in b && a.flags === b.flags && a.bin.equals(b.bin);
}

/** A value as memcached stores it (numbers: their decimal digits; the server may pad an in-place decr with spaces). */
function render(s: State): { data: Buffer; flags: number } | null {
  if (s === null) return null;
  return 'num' in s ? { data: Buffer.from(String(s.num)), flags: 0 } : { data: s.bin, flags: s.flags };
}

/** Builds the next command from the model's current state, and applies it to the model (optimistically). */
function nextOp(lane: Lane, m: McModel, small = false): Op {
  const r = lane.rng;
  const kind = r.weighted<Op['kind']>([['set', 35], ['get', 30], ['delete', 8], ['incr', 7], ['decr', 5]]);
  if (kind === 'get') {
    const n = r.chance(0.4) ? r.int(2, 8) : 1;
    const keys = Array.from({ length: n }, () => r.int(0, KEYS - 1));
    return { bytes: Buffer.from(`get ${keys.map((k) => m.key(k)).join(' ')}\r\n`), kind, keys, expect: keys.map((k) => m.cur(k)) };
  }
  if (kind === 'incr' || kind === 'decr') {
    const k = r.int(0, NUMERIC - 1), before = m.cur(k), delta = BigInt(r.chance(0.1) ? r.int(0, 2 ** 31) : r.int(0, 1000));
    let after: State = before, reply: string;
    if (before === null) reply = 'NOT_FOUND';
    else if (!('num' in before)) reply = 'CLIENT_ERROR cannot increment or decrement non-numeric value';
    else {
      const n = kind === 'incr' ? (before.num + delta) % TWO64 : before.num > delta ? before.num - delta : 0n;
      after = { num: n }; reply = String(n);
    }
    m.states[k] = after;
    return { bytes: Buffer.from(`${kind} ${m.key(k)} ${delta}\r\n`), kind, keys: [k], expect: [], before, after, reply };
  }
  const k = r.int(0, KEYS - 1), before = m.cur(k);
  if (kind === 'delete') {
    m.states[k] = null;
    return { bytes: Buffer.from(`delete ${m.key(k)}\r\n`), kind, keys: [k], expect: [], before, after: null };
  }
  if (k < NUMERIC) {
    const n = BigInt(r.chance(0.1) ? Number.MAX_SAFE_INTEGER - r.int(0, 1000) : r.int(0, 1_000_000));
    return setOp(m, k, Buffer.from(String(n)), 0);
  }
  const size = small ? r.int(0, 64) : r.chance(0.03) ? r.int(256 * 1024, VALUE_MAX) : r.logInt(1, 64 * 1024) - 1;
  return setOp(m, k, new ByteStream(r.seed()).next(size), r.seed());
}

/** `set` of key k to `data`, applied to the model (optimistically). */
function setOp(m: McModel, k: number, data: Buffer, flags: number): Op {
  const before = m.cur(k), after: State = k < NUMERIC ? { num: BigInt(data.toString('latin1')) } : { bin: data, flags };
  m.states[k] = after;
  const head = Buffer.from(`set ${m.key(k)} ${flags} 0 ${data.length}\r\n`);
  return { bytes: Buffer.concat([head, data, Buffer.from('\r\n')]), kind: 'set', keys: [k], expect: [], before, after };
}

/** Reads and checks one command's reply. */
async function checkReply(lane: Lane, p: Peer, m: McModel, op: Op): Promise<void> {
  const what = `memcached ${op.bytes.toString('latin1', 0, Math.min(op.bytes.length, 60)).split('\r\n')[0]}`;
  if (op.kind === 'get') {
    for (let i = 0; i < op.keys.length; i++) {
      const want = op.expect[i]!;
      if (want === null) continue;
      await checkValue(lane, p, m.key(op.keys[i]!), [want], what);
    }
    const end = await p.readLine(what);
    if (end !== 'END') throw new Failure(`${what}: ${JSON.stringify(end.slice(0, 80))}, want END`);
  } else {
    const line = await p.readLine(what);
    const want = op.kind === 'set' ? 'STORED' : op.kind === 'delete' ? (op.before === null ? 'NOT_FOUND' : 'DELETED') : op.reply!;
    if (line !== want) throw new Failure(`${what}: ${JSON.stringify(line.slice(0, 80))}, want ${JSON.stringify(want)}`);
  }
  lane.c.ops++;
}

/** One VALUE block of a get; it must be one of `states` (not null). Returns the state it was. */
async function checkValue(lane: Lane, p: Peer, key: string, states: State[], what: string): Promise<State> {
  const line = await p.readLine(what);
  const f = line.split(' ');
  if (f.length !== 4 || f[0] !== 'VALUE' || f[1] !== key || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) throw new Failure(`${what}: ${JSON.stringify(line.slice(0, 100))}, want VALUE ${key} …`);
  const flags = Number(f[2]), len = Number(f[3]);
  const data = await p.read(len + 2, what);
  if (data[len] !== 13 || data[len + 1] !== 10) throw new Failure(`${what}: value of ${len} bytes not followed by CRLF`);
  const value = data.subarray(0, len);
  const candidates = states.filter((s) => s !== null).map((s) => ({ s, r: render(s)! }));
  for (const { s, r } of candidates) {
    if ('num' in s!) {
      // an in-place decr keeps the item's length, padding with spaces (memcached's do_add_delta)
      const mm = /^(\d+) *$/.exec(value.toString('latin1'));
      if (mm && BigInt(mm[1]!) === s.num && flags === 0) { lane.c.bytesVerified += len; return s; }
    } else if (r.flags === flags && r.data.length === len && r.data.equals(value)) { lane.c.bytesVerified += len; return s; }
  }
  if (candidates.length === 1) { const r = candidates[0]!.r; verify(lane, value, r.data, `${what} value of ${key} (flags ${flags}, want ${r.flags})`); }
  throw new Failure(`${what}: value of ${key} (${len} bytes, flags ${flags}) is none of the ${candidates.length} possible after a reset`);
}

/** At a connection's start: check each retired key once (its value must be one of its possible states), delete it. */
async function resolve(lane: Lane, p: Peer, m: McModel): Promise<void> {
  for (const { key, states } of m.retired) {
    const what = `memcached get ${key} after a reset`;
    await p.write(Buffer.from(`get ${key}\r\n`), what);
    // a miss is "END" at once; a hit a VALUE block, then END
    const peek = await peekLine(p, what);
    if (peek.startsWith('VALUE ')) await checkValue(lane, p, key, states, what);
    else if (!states.includes(null)) throw new Failure(`${what}: a miss, but it cannot be missing`);
    const end = await p.readLine(what);
    if (end !== 'END') throw new Failure(`${what}: ${JSON.stringify(end.slice(0, 80))}, want END`);
    // the reset connection may still set it again later: nobody reads this name any more, the delete only frees memory
    await p.write(Buffer.from(`delete ${key}\r\n`), what);
    const del = await p.readLine(what);
    if (del !== 'DELETED' && del !== 'NOT_FOUND') throw new Failure(`${what}: delete answered ${JSON.stringify(del.slice(0, 80))}`);
  }
  m.retired = [];
}

/** The next line, left unread. */
async function peekLine(p: Peer, what: string): Promise<string> {
  const line = await p.readLine(what);
  p.unshift(Buffer.from(line + '\r\n', 'latin1'));
  return line;
}

/**
 * After a reset: ops[0..confirmed) answered, ops[confirmed..sent) wholly sent (maybe applied, maybe later, in order),
 * the rest not. A key with a wholly sent, unconfirmed mutation is retired (checked once, then a fresh name); a key
 * touched only by unsent commands goes back to its state before them.
 */
function settle(m: McModel, ops: Op[], confirmed: number, sent: number): void {
  const touched = new Map<number, { states: State[]; inFlight: boolean }>();
  for (let i = confirmed; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === 'get') continue;
    const k = op.keys[0]!;
    if (!touched.has(k)) touched.set(k, { states: [op.before!], inFlight: false });
    if (i < sent) { const t = touched.get(k)!; t.states.push(op.after!); t.inFlight = true; }
  }
  for (const [k, { states, inFlight }] of touched) {
    if (!inFlight) { m.states[k] = states[0]!; continue; }
    const uniq: State[] = [];
    for (const s of states) if (!uniq.some((u) => sameState(u, s))) uniq.push(s);
    m.retired.push({ key: m.key(k), states: uniq });
    m.gen[k]!++;
    m.states[k] = null;
  }
}

async function connect(lane: Lane, m: McModel): Promise<Peer> {
  const p = await open(lane);
  await resolve(lane, p, m);
  return p;
}

async function quit(lane: Lane, p: Peer): Promise<void> {
  p.end();
  await p.expectEof('memcached close');
  lane.c.clean++;
}

const models = new WeakMap<Lane, McModel>();
/** After a failure the model may be wrong: the lane starts over on fresh keys. */
export function forgetModel(lane: Lane): void { models.delete(lane); }
function model(lane: Lane): McModel {
  let m = models.get(lane);
  if (!m) { m = new McModel(`soak:${lane.name}:${lane.rng.seed().toString(36)}`); models.set(lane, m); }
  return m;
}

/** Request and reply, one command at a time. */
const normal: Scenario = async (lane) => {
  const m = model(lane), p = await connect(lane, m);
  for (let n = lane.rng.int(5, 60); n > 0; n--) {
    const op = nextOp(lane, m);
    await p.write(op.bytes, 'memcached send');
    lane.c.bytesSent += op.bytes.length;
    await checkReply(lane, p, m, op);
  }
  await quit(lane, p);
};

/** Batches of 2–50 commands in one write, replies read in order. */
const pipelined: Scenario = async (lane) => {
  const m = model(lane), p = await connect(lane, m);
  for (let b = lane.rng.int(1, 5); b > 0; b--) {
    const ops = Array.from({ length: lane.rng.int(2, 50) }, () => nextOp(lane, m));
    const bytes = Buffer.concat(ops.map((o) => o.bytes));
    await p.write(bytes, 'memcached send');
    lane.c.bytesSent += bytes.length;
    for (const op of ops) await checkReply(lane, p, m, op);
  }
  await quit(lane, p);
};

/** A reset mid-request (a batch cut at a random byte, maybe inside a value) or mid-reply (after some replies). */
const reset: Scenario = async (lane) => {
  const m = model(lane), p = await connect(lane, m);
  const ops = Array.from({ length: lane.rng.int(1, 30) }, () => nextOp(lane, m));
  const bytes = Buffer.concat(ops.map((o) => o.bytes));
  let confirmed = 0, sent = ops.length;
  try {
    if (lane.rng.chance(0.5)) {
      // mid-request: only a prefix goes out
      const cut = lane.rng.int(0, bytes.length - 1);
      await p.write(bytes.subarray(0, cut), 'memcached send');
      lane.c.bytesSent += cut;
      sent = 0;
      for (let off = 0; sent < ops.length && off + ops[sent]!.bytes.length <= cut; sent++) off += ops[sent]!.bytes.length;
      // replies to what was whole may come back: read a few
      for (let i = 0, n = lane.rng.int(0, sent); i < n; i++) { await checkReply(lane, p, m, ops[i]!); confirmed++; }
      await sleep(lane.rng.int(0, 50));
    } else {
      await p.write(bytes, 'memcached send');
      lane.c.bytesSent += bytes.length;
      for (let i = 0, n = lane.rng.int(0, ops.length - 1); i < n; i++) { await checkReply(lane, p, m, ops[i]!); confirmed++; }
      // mid-reply: wait for a few more bytes of the next one, then go
      await sleep(lane.rng.int(0, 20));
    }
  } finally {
    p.reset();
    lane.c.resets++;
    settle(m, ops, confirmed, sent);
  }
};

/** Zero window: big values, then 10–40 pipelined gets of them with reading stopped for seconds; then all verified. */
const stall: Scenario = async (lane) => {
  const m = model(lane), p = await connect(lane, m);
  const big: number[] = [];
  for (let i = 0; i < 4; i++) {
    const k = lane.rng.int(NUMERIC, KEYS - 1);
    const op = setOp(m, k, new ByteStream(lane.rng.seed()).next(lane.rng.int(128 * 1024, VALUE_MAX)), lane.rng.seed());
    await p.write(op.bytes, 'memcached send');
    lane.c.bytesSent += op.bytes.length;
    await checkReply(lane, p, m, op);
    big.push(k);
  }
  const ops: Op[] = Array.from({ length: lane.rng.int(10, 40) }, () => {
    const keys = Array.from({ length: lane.rng.int(1, 3) }, () => lane.rng.pick(big));
    return { bytes: Buffer.from(`get ${keys.map((k) => m.key(k)).join(' ')}\r\n`), kind: 'get', keys, expect: keys.map((k) => m.cur(k)) };
  });
  p.pause();
  const bytes = Buffer.concat(ops.map((o) => o.bytes));
  await p.write(bytes, 'memcached send', false);
  lane.c.bytesSent += bytes.length;
  await sleep(lane.rng.int(1000, lane.stallMaxS * 1000));
  p.resume();
  for (const op of ops) await checkReply(lane, p, m, op);
  await quit(lane, p);
};

/** Half-close: a batch, end() at once, every reply, then the server's EOF. */
const halfClose: Scenario = async (lane) => {
  const m = model(lane), p = await connect(lane, m);
  const ops = Array.from({ length: lane.rng.int(1, 30) }, () => nextOp(lane, m));
  const bytes = Buffer.concat(ops.map((o) => o.bytes));
  await p.write(bytes, 'memcached send', false);
  lane.c.bytesSent += bytes.length;
  p.end();
  for (const op of ops) await checkReply(lane, p, m, op);
  await p.expectEof('memcached half-close');
  lane.c.clean++;
};

/** Slow drip: 1–4 small commands, one byte per write, 0–10 ms apart. */
const drip: Scenario = async (lane) => {
  const m = model(lane), p = await connect(lane, m);
  const ops = Array.from({ length: lane.rng.int(1, 4) }, () => nextOp(lane, m, true));
  const bytes = Buffer.concat(ops.map((o) => o.bytes));
  for (let i = 0; i < bytes.length; i++) {
    await p.write(bytes.subarray(i, i + 1), 'memcached drip');
    await sleep(lane.rng.int(0, 10));
  }
  lane.c.bytesSent += bytes.length;
  for (const op of ops) await checkReply(lane, p, m, op);
  await quit(lane, p);
};

export const MEMCACHED_SCENARIOS: readonly (readonly [string, Scenario, number])[] = [
  ['normal', normal, 30], ['pipelined', pipelined, 25], ['reset', reset, 15], ['stall', stall, 8], ['half-close', halfClose, 12], ['drip', drip, 10],
];

/** The model's parts, for test/soak-memcached-model.test.ts. */
export const modelForTest = { setOp, settle, connect, checkReply, getOp: (m: McModel, k: number): Op => ({ bytes: Buffer.from(`get ${m.key(k)}\r\n`), kind: 'get', keys: [k], expect: [m.cur(k)] }) };
