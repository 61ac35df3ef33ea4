// Micro-benchmark behind the store's design (README "Why a shared store"): two worker threads run the same
// get/set mix (90 % get, 32-byte values, 100k keys) either
//   shared      — on one shared store (SharedArrayBuffer hash + slabs, striped Atomics locks), or
//   partitioned — each thread owning half the keys in its own store, handing requests for the other half to the
//                 owner thread in batches of 64 over a MessagePort and waiting for the answers.
// Prints operations per second for each. Run: node dist/bench/memcached-store.js [seconds]
import { MessageChannel, Worker, isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ALLOC_TOO_LARGE, Store, StoreCmd, createStoreShared, hashKey, type StoreShared } from '../apps/memcached/store.js';
import { Out } from '../apps/memcached/out.js';

const KEYS = 100_000;
const VALUE = 32;
const BATCH = 64;

interface Job { mode: 'shared' | 'partitioned'; stores: StoreShared[]; me: number; seconds: number; port?: MessagePort }

function keyBytes(i: number, buf: Uint8Array): number {
  const s = 'key:' + i;
  for (let j = 0; j < s.length; j++) buf[j] = s.charCodeAt(j);
  return s.length;
}

function doGet(st: Store, k: Uint8Array, n: number, out: Out): boolean {
  const hv = hashKey(k, 0, n);
  st.lockKey(hv);
  const ref = st.find(hv, k, 0, n);
  if (ref !== -1) { out.bytes(st.mem, st.dataOffset(ref), st.nbytes(ref)); st.bump(ref); }
  st.unlockKey(hv);
  return ref !== -1;
}

const valueBuf = new Uint8Array(VALUE + 2).fill(120);
valueBuf[VALUE] = 13; valueBuf[VALUE + 1] = 10;

function doSet(st: Store, k: Uint8Array, n: number): void {
  const ref = st.alloc(k, 0, n, 0, 0, VALUE + 2);
  if (ref < 0) throw new Error(ref === ALLOC_TOO_LARGE ? 'too large' : 'no memory');
  st.writeData(ref, 0, valueBuf, 0, VALUE + 2);
  st.storeItem(ref, StoreCmd.SET, false);
}

async function runWorker(job: Job): Promise<number> {
  const stores = job.stores.map((s) => new Store(s, job.me));
  const out = new Out(1 << 16);
  const k = new Uint8Array(64);
  let seed = 12345 + job.me * 777;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; };
  const deadline = Date.now() + job.seconds * 1000;
  let ops = 0;
  if (job.mode === 'shared') {
    const st = stores[0];
    while (Date.now() < deadline) {
      for (let i = 0; i < 1000; i++) {
        const r = rnd();
        const n = keyBytes(r % KEYS, k);
        if ((r >>> 20) % 10 === 0) doSet(st, k, n); else doGet(st, k, n, out);
        if (out.pos > 60000) out.pos = 0;
      }
      ops += 1000;
    }
    return ops;
  }
  // partitioned: key i belongs to thread i % 2; remote requests go in batches to the owner
  const mine = stores[job.me];
  const port = job.port!;
  let pending: ((v: unknown) => void) | null = null;
  let stopServing = false;
  port.on('message', (m: { req?: Int32Array; res?: Uint8Array }) => {
    if (m.req) {
      // serve the peer's batch against my partition
      const res = new Out(BATCH * (VALUE + 2));
      const kk = new Uint8Array(64);
      for (const code of m.req) {
        const key = code >>> 1, n = keyBytes(key, kk);
        if (code & 1) doSet(mine, kk, n); else doGet(mine, kk, n, res);
      }
      port.postMessage({ res: res.buf.subarray(0, res.pos) });
    } else if (pending) { const p = pending; pending = null; p(m.res); }
  });
  const remote: number[] = [];
  while (Date.now() < deadline) {
    for (let i = 0; i < 1000; i++) {
      const r = rnd();
      const key = r % KEYS;
      const set = (r >>> 20) % 10 === 0;
      if (key % 2 === job.me) {
        const n = keyBytes(key, k);
        if (set) doSet(mine, k, n); else doGet(mine, k, n, out);
        if (out.pos > 60000) out.pos = 0;
      } else {
        remote.push((key << 1) | (set ? 1 : 0));
        if (remote.length === BATCH) {
          const req = Int32Array.from(remote);
          remote.length = 0;
          await new Promise((resolve) => { pending = resolve; port.postMessage({ req }); });
        }
      }
    }
    ops += 1000;
  }
  stopServing = true;
  void stopServing;
  // keep answering the peer until it is done too
  await new Promise((r) => setTimeout(r, 200));
  port.close();
  return ops;
}

async function bench(mode: 'shared' | 'partitioned', seconds: number): Promise<number> {
  const mk = () => createStoreShared({ maxBytes: 64 * 1024 * 1024 });
  const stores = mode === 'shared' ? [mk()] : [mk(), mk()];
  // preload every key
  {
    const views = stores.map((s) => new Store(s, 0));
    const k = new Uint8Array(64);
    for (let i = 0; i < KEYS; i++) doSet(mode === 'shared' ? views[0] : views[i % 2], k, keyBytes(i, k));
  }
  const ch = new MessageChannel();
  const jobs: Job[] = [0, 1].map((me) => ({ mode, stores, me, seconds, port: me === 0 ? ch.port1 : ch.port2 }));
  const results = await Promise.all(jobs.map((job) => new Promise<number>((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: job, transferList: [job.port!] });
    w.once('message', (n: number) => resolve(n));
    w.once('error', reject);
  })));
  return results.reduce((a, b) => a + b, 0) / seconds;
}

if (isMainThread) {
  const seconds = Number(process.argv[2] ?? 2);
  const shared = await bench('shared', seconds);
  const part = await bench('partitioned', seconds);
  const fmt = (n: number) => `${(n / 1e6).toFixed(2)} M ops/s`;
  console.log(`2 threads, ${KEYS} keys, ${VALUE}-byte values, 90% get / 10% set`);
  console.log(`shared store (SAB + striped Atomics locks): ${fmt(shared)}`);
  console.log(`partitioned (owner thread per key, batches of ${BATCH} over MessagePort): ${fmt(part)}`);
  console.log(`shared / partitioned: ${(shared / part).toFixed(1)}x`);
} else {
  const n = await runWorker(workerData as Job);
  parentPort!.postMessage(n);
}
