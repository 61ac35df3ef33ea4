// One keyspace across worker threads: the store is created here (main thread) and its SharedArrayBuffers go to
// two worker threads (workerData), each serving memcached on its own port. Whatever connection a client uses, it
// sees the same data; concurrent updates from both threads stay consistent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createStoreShared, Store } from '../apps/memcached/store.js';
import type { McWorkerData } from '../apps/memcached/app.js';
import { RawClient, show } from './memcached-testkit.js';

const workerUrl = new URL('./fixtures/memcached-thread-worker.js', import.meta.url);

describe('memcached store shared by worker threads', () => {
  const workers: Worker[] = [];
  const ports: number[] = [];
  let data: McWorkerData;
  before(async () => {
    data = {
      store: createStoreShared({ maxBytes: 8 * 1024 * 1024 }),
      settings: { host: '127.0.0.1', port: 0, maxConns: 1024, threads: 2, verbosity: 0 },
    };
    for (let w = 0; w < 2; w++) {
      const worker = new Worker(workerUrl, { workerData: { data, worker: w, workers: 2 } });
      workers.push(worker);
      ports.push(await new Promise<number>((resolve, reject) => {
        worker.once('message', (m: { port: number }) => resolve(m.port));
        worker.once('error', reject);
      }));
    }
  });
  after(async () => {
    for (const w of workers) w.postMessage('close');
    await Promise.all(workers.map((w) => new Promise((r) => { w.once('exit', r); setTimeout(() => void w.terminate(), 2000).unref(); })));
  });

  it('serves the same keyspace on both threads', async () => {
    const a = await RawClient.connect(ports[0]), b = await RawClient.connect(ports[1]);
    assert.equal(await a.call('set shared 5 0 5\r\nhello\r\n'), 'STORED\r\n');
    assert.equal((await b.call('get shared\r\n', 'END\r\n')), 'VALUE shared 5 5\r\nhello\r\nEND\r\n');
    assert.equal(await b.call('append shared 0 0 6\r\n world\r\n'), 'STORED\r\n');
    assert.equal((await a.call('get shared\r\n', 'END\r\n')), 'VALUE shared 5 11\r\nhello world\r\nEND\r\n');
    assert.equal(await a.call('delete shared\r\n'), 'DELETED\r\n');
    assert.equal(await b.call('get shared\r\n', 'END\r\n'), 'END\r\n');
    // the main thread sees it too, through its own Store over the same memory
    assert.equal(await b.call('set fromb 0 0 1\r\nb\r\n'), 'STORED\r\n');
    const st = new Store(data.store, 5);
    const key = Buffer.from('fromb');
    const hv = (await import('../apps/memcached/store.js')).hashKey(key, 0, key.length);
    st.lockKey(hv);
    const ref = st.find(hv, key, 0, key.length);
    assert.notEqual(ref, -1);
    assert.equal(Buffer.from(st.mem.subarray(st.dataOffset(ref), st.dataOffset(ref) + st.nbytes(ref))).toString(), 'b\r\n');
    st.unlockKey(hv);
    a.close(); b.close();
  });

  it('counts correctly when both threads incr the same key', async () => {
    const a = await RawClient.connect(ports[0]), b = await RawClient.connect(ports[1]);
    assert.equal(await a.call('set ctr 0 0 1\r\n0\r\n'), 'STORED\r\n');
    const ROUNDS = 20, BATCH = 100;
    const run = async (c: RawClient) => {
      for (let r = 0; r < ROUNDS; r++) {
        c.send('incr ctr 1\r\n'.repeat(BATCH) + 'mn\r\n');
        const reply = (await c.read('MN\r\n')).toString();
        assert.equal(reply.split('\r\n').length, BATCH + 2, show(reply));
        assert.doesNotMatch(reply, /ERROR|NOT_FOUND/);
      }
    };
    await Promise.all([run(a), run(b)]);
    assert.equal(await a.call('get ctr\r\n', 'END\r\n'), `VALUE ctr 0 4\r\n${2 * ROUNDS * BATCH}\r\nEND\r\n`);
    a.close(); b.close();
  });

  it('never shows a torn value while both threads overwrite the same keys', async () => {
    const a = await RawClient.connect(ports[0]), b = await RawClient.connect(ports[1]);
    const KEYS = 50, ROUNDS = 20;
    // each value is one repeated character, length depending on the writer: a torn value would mix them
    const writer = async (c: RawClient, ch: string, len: number) => {
      for (let r = 0; r < ROUNDS; r++) {
        let cmd = '';
        for (let k = 0; k < KEYS; k++) cmd += `set torn${k} 0 0 ${len}\r\n${ch.repeat(len)}\r\n`;
        let q = 'get';
        for (let k = 0; k < KEYS; k++) q += ` torn${k}`;
        c.send(cmd + q + '\r\n');
        assert.equal((await c.read('STORED\r\n'.repeat(KEYS).length)).toString(), 'STORED\r\n'.repeat(KEYS));
        const got = (await c.read('END\r\n')).toString();
        let seen = 0;
        for (const m of got.matchAll(/VALUE torn\d+ 0 (\d+)\r\n([^\r]*)\r\n/g)) {
          const v = m[2];
          assert.ok(v === 'A'.repeat(300) || v === 'B'.repeat(7000), `torn value of ${m[1]} bytes: ${v.slice(0, 20)}…`);
          assert.equal(Number(m[1]), v.length);
          seen++;
        }
        // every key was just set by this writer or the other: all of them are there, and nothing else is
        assert.equal(seen, KEYS, `values checked in ${got.length} bytes of reply`);
        assert.ok(got.endsWith('END\r\n'));
      }
    };
    await Promise.all([writer(a, 'A', 300), writer(b, 'B', 7000)]);
    assert.deepEqual(new Store(data.store, 6).check(), []);
    a.close(); b.close();
  });

  it('runs a CAS loop from connections on different threads', async () => {
    const a = await RawClient.connect(ports[0]), b = await RawClient.connect(ports[1]);
    assert.equal(await a.call('set cl 0 0 1\r\n0\r\n'), 'STORED\r\n');
    const PER = 150;
    const loop = async (c: RawClient) => {
      for (let done = 0; done < PER;) {
        const r = await c.call('gets cl\r\n', 'END\r\n');
        const m = /^VALUE cl 0 \d+ (\d+)\r\n(\d+)\r\nEND\r\n$/.exec(r);
        assert.ok(m, show(r));
        const next = String(Number(m[2]) + 1);
        const res = await c.call(`cas cl 0 0 ${next.length} ${m[1]}\r\n${next}\r\n`);
        if (res === 'STORED\r\n') done++; else assert.equal(res, 'EXISTS\r\n');
      }
    };
    await Promise.all([loop(a), loop(b)]);
    assert.equal(await b.call('get cl\r\n', 'END\r\n'), `VALUE cl 0 3\r\n${2 * PER}\r\nEND\r\n`);
    a.close(); b.close();
  });
});
