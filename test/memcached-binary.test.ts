// memcached's binary protocol: a differential test against Debian's memcached started with `-B binary` (scripted
// cases and seeded random request sequences, sent split at random points; replies byte for byte, CAS and opaque
// included, and whether the connection was closed), then this server's own behaviour: protocol selection (-B auto,
// ascii, binary), stats as packets, -F, and malformed packets that must close or be answered without unbounded memory.
// Each socket suite runs on both transports (io_uring channels under serve(), node:net).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ServerHandle } from '../apps/memcached/server.js';
import {
  BinOp, binRequest, exchange, incrExtras, parseBinResponses, setExtras, showBin, timeExtras,
  type Chunk,
} from './memcached-testkit.js';
import { TRANSPORTS, referencePair, startOn, transportLabel, transportSkip } from './memcached-transports.js';
import { SEED, fuzzRuns } from './fixtures/fuzz-common.js';

const SENTINEL_OPAQUE = 0xfeedface;
const sentinel = binRequest({ opcode: BinOp.NOOP, opaque: SENTINEL_OPAQUE });
const SENTINEL_REPLY = Buffer.alloc(24);
SENTINEL_REPLY[0] = 0x81; SENTINEL_REPLY[1] = BinOp.NOOP; SENTINEL_REPLY.writeUInt32BE(SENTINEL_OPAQUE, 12);
const endsWithSentinel = (b: Buffer) => b.length >= 24 && b.subarray(b.length - 24).equals(SENTINEL_REPLY);

const R = binRequest;
const set = (key: string, value: string, o: { flags?: number; exptime?: number; cas?: bigint; opaque?: number; op?: number } = {}) =>
  R({ opcode: o.op ?? BinOp.SET, key, value, extras: setExtras(o.flags ?? 0, o.exptime ?? 0), cas: o.cas, opaque: o.opaque });
const get = (key: string, op: number = BinOp.GET, opaque = 0) => R({ opcode: op, key, opaque });
const incr = (key: string, delta: bigint, initial: bigint, exptime: number, op: number = BinOp.INCR, cas?: bigint) =>
  R({ opcode: op, key, extras: incrExtras(delta, initial, exptime), cas });
const cat = (...b: Buffer[]) => Buffer.concat(b);
const K250 = 'k'.repeat(250), K251 = 'k'.repeat(251);
// memcached's limit: 48 (header) + key + 1 + value + 2 + 8 (CAS) [+ 4 if flags] <= 1 MiB
const maxVal = (nkey: number) => 1024 * 1024 - 48 - nkey - 1 - 2 - 8;

interface Case { name: string; chunks: Chunk[]; noSentinel?: boolean; gapMs?: number }

const cases: Case[] = [
  { name: 'noop, version', chunks: [cat(R({ opcode: BinOp.NOOP, opaque: 1 }), R({ opcode: BinOp.VERSION, opaque: 2 }))] },
  { name: 'set/get/getk with flags, CAS, opaque', chunks: [cat(set('a', 'hello', { flags: 0xdeadbeef, opaque: 7 }), get('a', BinOp.GET, 8), get('a', BinOp.GETK, 9), get('nosuch', BinOp.GET, 10), get('nosuch', BinOp.GETK, 11))] },
  { name: 'quiet gets batched until noop', chunks: [cat(set('q1', 'one'), get('q1', BinOp.GETQ, 1), get('nosuch', BinOp.GETQ, 2), get('q1', BinOp.GETKQ, 3), get('nosuch', BinOp.GETKQ, 4), R({ opcode: BinOp.NOOP, opaque: 5 }))] },
  { name: 'quiet sets answer only errors', chunks: [cat(set('s1', 'x', { op: BinOp.SETQ }), set('s1', 'y', { op: BinOp.ADDQ }), set('nosuch', 'z', { op: BinOp.REPLACEQ }), set('s1', 'w', { op: BinOp.REPLACEQ }), get('s1'))] },
  { name: 'add/replace', chunks: [cat(set('ar', 'a', { op: BinOp.ADD }), set('ar', 'b', { op: BinOp.ADD }), set('ar', 'c', { op: BinOp.REPLACE }), set('nosuch', 'd', { op: BinOp.REPLACE }), get('ar'))] },
  { name: 'cas on set', chunks: [cat(set('cs', 'a'), set('cs', 'b', { cas: 1n }), set('nosuch2', 'b', { cas: 5n }), set('cs', 'c', { op: BinOp.ADD, cas: 3n }), get('cs'))] },
  { name: 'append/prepend', chunks: [cat(R({ opcode: BinOp.APPEND, key: 'ap', value: 'x' }), set('ap', 'mid', { flags: 5 }), R({ opcode: BinOp.APPEND, key: 'ap', value: '_end' }), R({ opcode: BinOp.PREPENDQ, key: 'ap', value: 'start_' }), R({ opcode: BinOp.APPEND, key: 'ap', value: '!', cas: 1n }), get('ap'))] },
  { name: 'delete', chunks: [cat(set('dl', 'a'), R({ opcode: BinOp.DELETE, key: 'dl', cas: 12345n }), R({ opcode: BinOp.DELETE, key: 'dl' }), R({ opcode: BinOp.DELETE, key: 'dl' }), set('dl', 'b'), R({ opcode: BinOp.DELETEQ, key: 'dl' }), R({ opcode: BinOp.DELETEQ, key: 'dl' }), get('dl'))] },
  { name: 'incr/decr', chunks: [cat(set('ic', '10'), incr('ic', 5n, 0n, 0), R({ opcode: BinOp.DECR, key: 'ic', extras: incrExtras(3n, 0n, 0) }), get('ic'), R({ opcode: BinOp.DECR, key: 'ic', extras: incrExtras(100n, 0n, 0) }), get('ic'), incr('ic', 18446744073709551615n, 0n, 0), get('ic'))] },
  { name: 'incr vivify and misses', chunks: [cat(incr('iv', 1n, 42n, 0), incr('iv', 1n, 42n, 0), get('iv'), incr('im', 1n, 42n, 0xffffffff), R({ opcode: BinOp.DECR, key: 'im2', extras: incrExtras(1n, 18446744073709551615n, 100) }), get('im2'), incr('iq', 1n, 7n, 0, BinOp.INCRQ), incr('iq', 1n, 7n, 0, BinOp.INCRQ), get('iq'))] },
  { name: 'incr non-numeric, padding, CAS', chunks: [cat(set('nn', 'abc'), incr('nn', 1n, 0n, 0), set('nn', ''), incr('nn', 1n, 0n, 0), set('nn', '100'), R({ opcode: BinOp.DECR, key: 'nn', extras: incrExtras(1n, 0n, 0) }), get('nn'), incr('nn', 1n, 0n, 0, BinOp.INCR, 1n), set('big', '18446744073709551615'), incr('big', 1n, 0n, 0), get('big'), set('l21', '123456789012345678901'), incr('l21', 1n, 0n, 0))] },
  { name: 'touch/gat/gatk', chunks: [cat(set('th', 'val', { flags: 3 }), R({ opcode: BinOp.TOUCH, key: 'th', extras: timeExtras(100) }), R({ opcode: BinOp.TOUCH, key: 'nosuch', extras: timeExtras(100) }), R({ opcode: BinOp.GAT, key: 'th', extras: timeExtras(0) }), R({ opcode: BinOp.GATK, key: 'th', extras: timeExtras(0) }), R({ opcode: BinOp.GATQ, key: 'nosuch', extras: timeExtras(0) }), R({ opcode: BinOp.GATKQ, key: 'th', extras: timeExtras(0) }), R({ opcode: BinOp.GATK, key: 'nosuch', extras: timeExtras(0) }), R({ opcode: BinOp.NOOP }))] },
  { name: 'expiry in the past', chunks: [cat(set('ex', 'a', { exptime: 2592001 }), get('ex'), set('ex2', 'b', { exptime: 0xffffffff }), get('ex2'), R({ opcode: BinOp.TOUCH, key: 'ex2', extras: timeExtras(2592001) }), get('ex2'))] },
  { name: 'flush', chunks: [cat(set('fa', 'a'), R({ opcode: BinOp.FLUSH }), get('fa'), set('fa', 'b'), R({ opcode: BinOp.FLUSHQ }), get('fa'), R({ opcode: BinOp.FLUSH, extras: timeExtras(0) }))] },
  { name: 'stat groups', chunks: [cat(R({ opcode: BinOp.STAT, key: 'reset', opaque: 1 }), R({ opcode: BinOp.STAT, key: 'detail on' }), R({ opcode: BinOp.STAT, key: 'detail off' }), R({ opcode: BinOp.STAT, key: 'detail dump' }), R({ opcode: BinOp.STAT, key: 'detail bogus' }), R({ opcode: BinOp.STAT, key: 'bogus' }), R({ opcode: BinOp.STAT, key: 'conns' }), R({ opcode: BinOp.STAT, key: 'sizes' }), R({ opcode: BinOp.STAT, key: 'sizes_enable', opaque: 5 }), R({ opcode: BinOp.STAT, key: 'sizes', opaque: 6 }), R({ opcode: BinOp.STAT, key: 'sizes_disable', opaque: 7 }), R({ opcode: BinOp.STAT, key: 'sizes_disablez', opaque: 8 }), R({ opcode: BinOp.STAT, key: 'sizes', opaque: 9 }))] },
  { name: 'key lengths', chunks: [cat(set(K250, 'a'), get(K250), R({ opcode: BinOp.DELETE, key: K250 }))] },
  { name: 'value exactly at limit, and one over (swallowed)', chunks: [set('L', 'v'.repeat(maxVal(1))), get('L', BinOp.GETK, 1), set('L', 'w'.repeat(maxVal(1) + 1)), get('L', BinOp.GET, 2)] },
  { name: 'huge body: too large, value swallowed', chunks: [set('big', 'x'.repeat(2_000_000)), get('big')] },
  { name: 'unknown opcodes swallow their body (verbosity too)', chunks: [cat(R({ opcode: BinOp.VERBOSITY, extras: timeExtras(1) }), R({ opcode: BinOp.NOOP, opaque: 1 }), R({ opcode: 0x40, key: 'abc', value: 'defgh' }), Buffer.alloc(8), R({ opcode: 0x30 }), R({ opcode: 0xff }), R({ opcode: BinOp.NOOP, opaque: 2 }))] },
  { name: 'SASL opcodes without -S', chunks: [cat(R({ opcode: BinOp.SASL_LIST_MECHS }), R({ opcode: BinOp.SASL_AUTH, key: 'PLAIN', value: '\0u\0p' }), R({ opcode: BinOp.NOOP }))] },
  // memcached's swallow count is an int: a body length of 2^31 or more swallows nothing, the next packet is read
  { name: 'unknown opcode, verbosity, SASL auth with a body length of 2^31 or more swallow nothing', chunks: [cat(
    R({ opcode: 0x40, bodylen: 0x80000000 }), R({ opcode: BinOp.NOOP, opaque: 1 }),
    R({ opcode: 0x40, bodylen: 0xffffffff }), R({ opcode: BinOp.NOOP, opaque: 2 }),
    R({ opcode: BinOp.VERBOSITY, bodylen: 0x80000000 }), R({ opcode: BinOp.NOOP, opaque: 3 }),
    R({ opcode: BinOp.SASL_AUTH, key: 'P', bodylen: 0x80000001 }), R({ opcode: BinOp.NOOP, opaque: 4 }),
    R({ opcode: BinOp.SASL_STEP, key: 'P', bodylen: 0xffffffff }), R({ opcode: BinOp.NOOP, opaque: 5 }))] },
  { name: 'split in pieces', gapMs: 5, chunks: (() => { const b = cat(set('sp', 'hello', { flags: 9 }), get('sp', BinOp.GETK)); return [b.subarray(0, 3), b.subarray(3, 24), b.subarray(24, 30), b.subarray(30, 40), b.subarray(40)]; })() },
  // closing cases (no sentinel: the connection closes)
  { name: 'quit', noSentinel: true, chunks: [cat(set('qq', 'a'), R({ opcode: BinOp.QUIT, opaque: 3 }), get('qq'))] },
  { name: 'quitq', noSentinel: true, chunks: [cat(get('qq', BinOp.GETK), R({ opcode: BinOp.QUITQ }), get('qq'))] },
  { name: 'key over 250 bytes closes', noSentinel: true, chunks: [cat(get('a'), get(K251))] },
  { name: 'lengths that do not add up close', noSentinel: true, chunks: [cat(get('a'), R({ opcode: BinOp.GET, key: 'abcdef', bodylen: 3 }))] },
  { name: 'wrong extras for the opcode close', noSentinel: true, chunks: [cat(R({ opcode: BinOp.NOOP }), R({ opcode: BinOp.SET, key: 'a', value: 'x', extras: Buffer.alloc(4) }))] },
  { name: 'get with a body closes', noSentinel: true, chunks: [cat(R({ opcode: BinOp.GET, key: 'a', value: 'x' }))] },
  { name: 'bad magic after a command closes (its reply dropped)', noSentinel: true, chunks: [cat(get('a', BinOp.GETK), Buffer.from('get a\r\n'), Buffer.alloc(24))] },
  // the value's last byte in a later read: memcached writes the set's reply before it reads the bad magic
  { name: 'bad magic right after a value ended in a later read (the set\'s reply kept)', noSentinel: true, gapMs: 100, chunks: (() => { const b = set('sv', '42', { opaque: 1 }); return [b.subarray(0, b.length - 1), cat(b.subarray(b.length - 1), Buffer.alloc(24))]; })() },
  { name: 'bad magic after a write point', noSentinel: true, chunks: [cat(get('a'), R({ opcode: BinOp.NOOP }), R({ opcode: BinOp.NOOP, magic: 0x81 }))] },
  { name: 'header, extras and key over 16 KiB close', noSentinel: true, chunks: [cat(R({ opcode: BinOp.NOOP }), get('zz', BinOp.GETKQ), R({ opcode: BinOp.GET, key: 'k'.repeat(16361) }))] },
  { name: 'text on a -B binary server', noSentinel: true, chunks: ['version\r\nget a\r\nset a 0 0 1\r\nx\r\n'] },
];

// ---- seeded random request sequences ----------------------------------------------------------------------------

const keyArb = fc.constantFrom('a', 'b', 'num', 'n2', 'k'.repeat(40));
const valueArb = fc.oneof(
  fc.constantFrom('', '0', '1', '10', '99', '100', 'abc', ' 12', '12 ', '18446744073709551615', '18446744073709551614', 'hello world'),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1')),
);
const exptimeArb = fc.constantFrom(0, 0, 0, 100, 2592001, 0xffffffff);
const casArb = fc.oneof({ weight: 6, arbitrary: fc.constant(0n) }, { weight: 3, arbitrary: fc.bigInt({ min: 1n, max: 40n }) }, { weight: 1, arbitrary: fc.constant(0xffffffffffffffffn) });
const u64Arb = fc.constantFrom(0n, 1n, 5n, 100n, 18446744073709551615n, 4294967296n);
const opaqueArb = fc.nat();

/** One request that neither closes the connection nor depends on the clock. */
const requestArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constantFrom(BinOp.SET, BinOp.SETQ, BinOp.ADD, BinOp.ADDQ, BinOp.REPLACE, BinOp.REPLACEQ), key: keyArb, value: valueArb, flags: fc.constantFrom(0, 0, 7, 0xffffffff), exptime: exptimeArb, cas: casArb, opaque: opaqueArb })
    .map((r) => R({ opcode: r.op, key: r.key, value: r.value, extras: setExtras(r.flags, r.exptime), cas: r.cas, opaque: r.opaque })) },
  { weight: 6, arbitrary: fc.record({ op: fc.constantFrom(BinOp.GET, BinOp.GETQ, BinOp.GETK, BinOp.GETKQ), key: keyArb, opaque: opaqueArb }).map((r) => R({ opcode: r.op, key: r.key, opaque: r.opaque })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom(BinOp.APPEND, BinOp.APPENDQ, BinOp.PREPEND, BinOp.PREPENDQ), key: keyArb, value: valueArb, cas: casArb, opaque: opaqueArb }).map((r) => R({ opcode: r.op, key: r.key, value: r.value, cas: r.cas, opaque: r.opaque })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom(BinOp.DELETE, BinOp.DELETEQ), key: keyArb, cas: casArb, opaque: opaqueArb }).map((r) => R({ opcode: r.op, key: r.key, cas: r.cas, opaque: r.opaque })) },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom(BinOp.INCR, BinOp.INCRQ, BinOp.DECR, BinOp.DECRQ), key: keyArb, delta: u64Arb, initial: u64Arb, exptime: fc.constantFrom(0, 100, 0xffffffff), cas: casArb, opaque: opaqueArb })
    .map((r) => R({ opcode: r.op, key: r.key, extras: incrExtras(r.delta, r.initial, r.exptime), cas: r.cas, opaque: r.opaque })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom(BinOp.TOUCH, BinOp.GAT, BinOp.GATQ, BinOp.GATK, BinOp.GATKQ), key: keyArb, exptime: exptimeArb, opaque: opaqueArb }).map((r) => R({ opcode: r.op, key: r.key, extras: timeExtras(r.exptime), opaque: r.opaque })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom(BinOp.NOOP, BinOp.VERSION, BinOp.FLUSH, BinOp.FLUSHQ), opaque: opaqueArb }).map((r) => R({ opcode: r.op, opaque: r.opaque })) },
  { weight: 1, arbitrary: fc.record({ group: fc.constantFrom('reset', 'detail on', 'detail off', 'bogus', 'conns', 'sizes', 'sizes_enable', 'sizes_disable'), opaque: opaqueArb }).map((r) => R({ opcode: BinOp.STAT, key: r.group, opaque: r.opaque })) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom(BinOp.VERBOSITY, 0x25, 0x30, 0x99), n: fc.constantFrom(0, 4), opaque: opaqueArb }).map((r) => R({ opcode: r.op, extras: Buffer.alloc(r.n), opaque: r.opaque })) },
);
/** Requests that close the connection (at most one, last). */
const closerArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(R({ opcode: BinOp.QUIT, opaque: 9 })),
  fc.constant(R({ opcode: BinOp.QUITQ })),
  fc.constant(get(K251)),
  fc.constant(R({ opcode: BinOp.GET, key: 'abc', bodylen: 1 })),
  fc.constant(R({ opcode: BinOp.INCR, key: 'a', extras: Buffer.alloc(4) })),
  fc.constant(R({ opcode: BinOp.NOOP, magic: 0x00 })),
);
const scriptArb = fc.record({
  requests: fc.array(requestArb, { minLength: 5, maxLength: 60 }),
  closer: fc.option(closerArb, { freq: 4 }),
}).chain(({ requests, closer }) => {
  const bytes = Buffer.concat(closer === null ? requests : [...requests, closer]);
  return fc.record({
    bytes: fc.constant(bytes),
    closes: fc.constant(closer !== null),
    cuts: fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 5 }).map((a) => a.sort((x, y) => x - y)),
  });
});
const RANDOM_SCRIPTS = fuzzRuns(12);
const scripts = fc.sample(scriptArb, { seed: SEED, numRuns: RANDOM_SCRIPTS });
scripts.forEach((s, i) => {
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...s.cuts, s.bytes.length]) { chunks.push(s.bytes.subarray(prev, c)); prev = c; }
  cases.push({ name: `random script ${i + 1} (MEGAPIPE_FUZZ_SEED=${SEED}), ${s.bytes.length} bytes in ${chunks.length} pieces`, chunks, noSentinel: s.closes, gapMs: 3 });
});

/** Sends a case to both servers; fails unless the replies and the closing match. Returns our reply. */
async function compare(refPort: number, ourPort: number, c: Case): Promise<Buffer> {
  const chunks = c.noSentinel ? c.chunks : [...c.chunks, sentinel];
  const opts = { gapMs: c.gapMs, until: c.noSentinel ? undefined : endsWithSentinel, idleMs: c.noSentinel ? 1500 : 5000 };
  const [a, b] = await Promise.all([exchange(refPort, chunks, opts), exchange(ourPort, chunks, opts)]);
  if (!a.out.equals(b.out)) {
    let i = 0;
    while (i < a.out.length && a.out[i] === b.out[i]) i++;
    assert.fail(`reply differs at byte ${i}\n memcached:\n${showBin(a.out)}\n      ours:\n${showBin(b.out)}`);
  }
  assert.equal(b.closed, a.closed, `connection closed: memcached ${a.closed}, ours ${b.closed}`);
  return b.out;
}

for (const transport of TRANSPORTS) describe(`memcached binary protocol, Debian memcached -B binary vs ours (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  const pair = referencePair(transport, ['-m', '64', '-B', 'binary'], { port: 0, memoryMb: 64, threads: 1, protocol: 'binary' });
  for (const c of cases) {
    it(c.name, async (t) => {
      if (!pair.ref) { t.skip('/usr/bin/memcached not installed (apt-get install memcached): differential cases skipped'); return; }
      await compare(pair.ref.port, pair.ours.port, c);
    });
  }
  it('CAS values read from each server match and are honoured', async (t) => {
    if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
    const casOf = async (port: number) => {
      const r = await exchange(port, [set('cm', 'a'), sentinel], { until: endsWithSentinel });
      return parseBinResponses(r.out).packets[0]!.cas;
    };
    const [ca, cb] = await Promise.all([casOf(pair.ref.port), casOf(pair.ours.port)]);
    assert.equal(cb, ca, 'CAS counters in step');
    // stale CAS, matching CAS, the same (now stale) CAS again; delete with a stale, then the current CAS
    const out = await compare(pair.ref.port, pair.ours.port, { name: 'cas match', chunks: [cat(set('cm', 'b', { cas: ca + 1n }), set('cm', 'c', { cas: ca }), set('cm', 'd', { cas: ca }), get('cm'), R({ opcode: BinOp.DELETE, key: 'cm', cas: ca }), R({ opcode: BinOp.DELETE, key: 'cm', cas: ca + 1n }), get('cm'))] });
    const p = parseBinResponses(out).packets;
    assert.deepEqual(p.slice(0, 7).map((x) => x.status), [2, 0, 2, 0, 2, 0, 1], showBin(out));
    assert.equal(p[1]!.cas, ca + 1n, 'the stored item\'s new CAS');
    assert.equal(p[3]!.value.toString(), 'c');
    assert.equal(p[3]!.cas, ca + 1n);
  });
});

// ---- this server on its own ---------------------------------------------------------------------------------------

for (const transport of TRANSPORTS) describe(`memcached binary protocol: selection, stats, limits (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  const servers: ServerHandle[] = [];
  const start = async (o: Parameters<typeof startOn>[1]) => { const s = await startOn(transport, { port: 0, threads: 1, memoryMb: 16, ...o }); servers.push(s); return s; };
  after(async () => { await Promise.all(servers.map((s) => s.close())); });

  it('-B auto picks the protocol per connection by its first byte; -B ascii takes 0x80 as text', async () => {
    const auto = await start({});
    const bin = await exchange(auto.port, [cat(set('x', 'bin'), sentinel)], { until: endsWithSentinel });
    assert.equal(parseBinResponses(bin.out).packets[0]!.status, 0);
    const text = await exchange(auto.port, ['get x\r\n'], { until: (b) => b.includes('END\r\n') });
    assert.equal(text.out.toString('latin1'), 'VALUE x 0 3\r\nbin\r\nEND\r\n', 'one store, both protocols');
    const ascii = await start({ protocol: 'ascii' });
    const r = await exchange(ascii.port, [cat(sentinel, Buffer.from('\r\nversion\r\n'))], { until: (b) => b.includes('VERSION') });
    assert.match(r.out.toString('latin1'), /^ERROR\r\nERROR\r\nVERSION \S+\r\n$/);
  });

  it('stat: every general statistic as a packet (key = name, value), then an empty packet; binding_protocol in settings', async () => {
    const srv = await start({ protocol: 'binary' });
    const r = await exchange(srv.port, [cat(R({ opcode: BinOp.STAT, opaque: 77 }), R({ opcode: BinOp.STAT, key: 'settings', opaque: 78 }), sentinel)], { until: endsWithSentinel });
    const p = parseBinResponses(r.out).packets;
    const ends = p.map((x, i) => (x.key.length === 0 && x.opcode === BinOp.STAT ? i : -1)).filter((i) => i >= 0);
    assert.equal(ends.length, 2, 'two terminating packets');
    const general = new Map(p.slice(0, ends[0]).map((x) => [x.key.toString(), x.value.toString()]));
    for (const k of ['pid', 'uptime', 'version', 'curr_connections', 'cmd_get', 'bytes', 'curr_items']) assert.ok(general.has(k), k);
    assert.ok(p.slice(0, ends[0]! + 1).every((x) => x.opaque === 77 && x.status === 0 && x.cas === 0n && x.extras.length === 0));
    const settings = new Map(p.slice(ends[0]! + 1, ends[1]).map((x) => [x.key.toString(), x.value.toString()]));
    assert.equal(settings.get('binding_protocol'), 'binary');
    assert.equal(settings.get('flush_enabled'), 'yes');
  });

  it('-F: flush answers "Auth failure." (binary) and CLIENT_ERROR (text), nothing is flushed', async () => {
    const srv = await start({ flushEnabled: false });
    const r = await exchange(srv.port, [cat(set('f', 'v'), R({ opcode: BinOp.FLUSH }), get('f'), sentinel)], { until: endsWithSentinel });
    const p = parseBinResponses(r.out).packets;
    assert.equal(p[1]!.status, 0x20);
    assert.equal(p[1]!.value.toString(), 'Auth failure.');
    assert.equal(p[2]!.value.toString(), 'v');
    const t = await exchange(srv.port, ['flush_all\r\nget f\r\n'], { until: (b) => b.includes('END\r\n') });
    assert.equal(t.out.toString('latin1'), 'CLIENT_ERROR flush_all not allowed\r\nVALUE f 0 1\r\nv\r\nEND\r\n');
  });

  it('malformed input never grows memory: a 4 GiB body is answered and swallowed as it streams; bad packets close', async () => {
    const srv = await start({ protocol: 'binary' });
    // bodylen 0x7ffffff0: "Too large." then memcached swallows the value; we send 3 MiB of it and a noop, which is swallowed too
    const r = await exchange(srv.port, [R({ opcode: BinOp.SET, key: 'k', extras: setExtras(0, 0), bodylen: 0x7ffffff0 }), Buffer.alloc(3 << 20), sentinel], { until: (b) => b.length >= 24 + 10, idleMs: 1000 });
    const p = parseBinResponses(r.out).packets;
    assert.equal(p.length, 1);
    assert.equal(p[0]!.status, 3);
    assert.equal(r.closed, false);
    // a bodylen that makes vlen negative (as memcached's int): Too large, nothing swallowed
    const r2 = await exchange(srv.port, [cat(R({ opcode: BinOp.SET, key: 'k', extras: setExtras(0, 0), bodylen: 0xfffffff0 }), sentinel)], { until: endsWithSentinel });
    assert.equal(parseBinResponses(r2.out).packets[0]!.status, 3);
    for (const bad of [R({ opcode: BinOp.GET, key: 'k'.repeat(20000) }), R({ opcode: BinOp.NOOP, magic: 0x81 }), R({ opcode: BinOp.GET, key: 'abc', bodylen: 2 })]) {
      const c = await exchange(srv.port, [bad], { idleMs: 3000 });
      assert.equal(c.closed, true, showBin(c.out));
    }
    const alive = await exchange(srv.port, [sentinel], { until: endsWithSentinel });
    assert.ok(endsWithSentinel(alive.out), 'the server still answers');
  });
});
