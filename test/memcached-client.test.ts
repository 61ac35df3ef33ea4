// The npm `memcached` client against our server, and against three instances at once (its consistent hashing
// spreads keys over them: the way memcached scales past one machine).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Memcached from 'memcached';
import type { ServerHandle } from '../apps/memcached/server.js';
import { Store } from '../apps/memcached/store.js';
import { RawClient } from './memcached-testkit.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

type Cb<T> = (err: unknown, r: T) => void;
function p<T>(f: (cb: Cb<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => f((err, r) => (err ? reject(err) : resolve(r))));
}

const OPTS = { retries: 0, timeout: 5000, reconnect: 1000, poolSize: 10 };

for (const transport of TRANSPORTS) describe(`npm memcached client (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  let mc: Memcached;
  before(async () => {
    srv = await startOn(transport, { port: 0, memoryMb: 16 });
    mc = new Memcached(`127.0.0.1:${srv.port}`, OPTS);
  });
  after(async () => { mc?.end(); await srv?.close(); });

  it('set/get/getMulti/del', async () => {
    assert.equal(await p<boolean>((cb) => mc.set('greeting', 'hello world', 60, cb)), true);
    assert.equal(await p<string>((cb) => mc.get('greeting', cb)), 'hello world');
    assert.equal(await p<boolean>((cb) => mc.set('obj', { a: 1, b: [1, 2] } as unknown as string, 60, cb)), true);
    assert.deepEqual(await p<unknown>((cb) => mc.get('obj', cb)), { a: 1, b: [1, 2] });
    const multi = await p<Record<string, unknown>>((cb) => mc.getMulti(['greeting', 'obj', 'missing'], cb));
    assert.deepEqual(multi, { greeting: 'hello world', obj: { a: 1, b: [1, 2] } });
    assert.equal(await p<boolean>((cb) => mc.del('greeting', cb)), true);
    assert.equal(await p<unknown>((cb) => mc.get('greeting', cb)), undefined);
  });

  it('add/replace/append/prepend/incr/decr/touch', async () => {
    assert.equal(await p<boolean>((cb) => mc.add('k', 'v', 60, cb)), true);
    await assert.rejects(p<boolean>((cb) => mc.add('k', 'w', 60, cb)), /Item is not stored/);
    assert.equal(await p<boolean>((cb) => mc.replace('k', 'x', 60, cb)), true);
    assert.equal(await p<boolean>((cb) => mc.append('k', '>', cb)), true);
    assert.equal(await p<boolean>((cb) => mc.prepend('k', '<', cb)), true);
    assert.equal(await p<string>((cb) => mc.get('k', cb)), '<x>');
    assert.equal(await p<boolean>((cb) => mc.set('n', 10, 60, cb)), true);
    assert.equal(await p<number | boolean>((cb) => mc.incr('n', 5, cb)), 15);
    assert.equal(await p<number | boolean>((cb) => mc.decr('n', 20, cb)), 0);
    // touch moves the expiry from 60 s to 100 s from now: alive at 80 s (the server's shared clock moved, no
    // sleeping), gone after 100 s
    await p<boolean>((cb) => mc.touch('n', 100, (err: unknown) => cb(err, true)));
    const clock = new Store(srv.store, 63);
    clock.advanceClock(80);
    assert.equal(await p<unknown>((cb) => mc.get('n', cb)), 0);
    clock.advanceClock(30);
    assert.equal(await p<unknown>((cb) => mc.get('n', cb)), undefined);
  });

  it('gets/cas', async () => {
    await p<boolean>((cb) => mc.set('c', 'one', 60, cb));
    const g = await p<{ [key: string]: string; cas: string }>((cb) => mc.gets('c', cb));
    assert.equal(g.c, 'one');
    assert.equal(await p<boolean>((cb) => mc.cas('c', 'two', g.cas, 60, cb)), true);
    assert.equal(await p<boolean>((cb) => mc.cas('c', 'three', g.cas, 60, cb)), false);
    assert.equal(await p<string>((cb) => mc.get('c', cb)), 'two');
  });

  it('stores large values', async () => {
    const big = 'x'.repeat(500_000);
    assert.equal(await p<boolean>((cb) => mc.set('big', big, 60, cb)), true);
    assert.equal(await p<string>((cb) => mc.get('big', cb)), big);
  });
});

for (const transport of TRANSPORTS) describe(`three instances behind the client, consistent hashing (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  const servers: ServerHandle[] = [];
  let mc: Memcached;
  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startOn(transport, { port: 0, memoryMb: 8, threads: 1 }));
    mc = new Memcached(servers.map((s) => `127.0.0.1:${s.port}`), OPTS);
  });
  after(async () => { mc?.end(); await Promise.all(servers.map((s) => s.close())); });

  it('sets and gets 1,000 keys spread over the instances', async () => {
    const N = 1000;
    const value = (i: number) => `value-${i}-${'z'.repeat(i % 50)}`;
    for (let i = 0; i < N; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => p<boolean>((cb) => mc.set(`key:${i + j}`, value(i + j), 600, cb))));
    }
    for (let i = 0; i < N; i += 100) {
      const keys = Array.from({ length: 100 }, (_, j) => `key:${i + j}`);
      const got = await p<Record<string, string>>((cb) => mc.getMulti(keys, cb));
      for (const k of keys) assert.equal(got[k], value(Number(k.slice(4))), k);
    }
    // ask each instance directly which keys it holds
    const perServer: number[] = [];
    const owner = new Map<string, number>();
    for (let s = 0; s < servers.length; s++) {
      const c = await RawClient.connect(servers[s].port);
      let n = 0;
      for (let i = 0; i < N; i += 100) {
        c.send('get' + Array.from({ length: 100 }, (_, j) => ` key:${i + j}`).join('') + '\r\n');
        const r = (await c.read('END\r\n')).toString();
        for (const m of r.matchAll(/VALUE (key:\d+) /g)) {
          assert.equal(owner.has(m[1]), false, `${m[1]} on two instances`);
          owner.set(m[1], s);
          n++;
        }
      }
      c.close();
      perServer.push(n);
    }
    assert.equal(owner.size, N, 'every key on exactly one instance');
    assert.ok(perServer.filter((n) => n > 0).length > 1, `keys on more than one instance: ${perServer.join('/')}`);
  });
});
