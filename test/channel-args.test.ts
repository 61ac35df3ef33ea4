// Invalid arguments to every call throw a TypeError (wrong type) or RangeError (right type, out of range) whose
// message names the argument — synchronously, before anything is queued. Promise-returning calls reject instead.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { BACKENDS, connectSocket, openListener, skipFor, uringSkip, waitFor } from './helpers.js';
import { createChannel, listen, listenPortable, type Channel, type Listener } from '../src/index.js';

type ErrType = typeof TypeError | typeof RangeError;

function throwsNaming(fn: () => unknown, type: ErrType, name: string, what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `${what}: expected ${type.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok((e as Error).message.includes(name), `${what}: message "${(e as Error).message}" names ${name}`);
    return true;
  }, what);
}

async function rejectsNaming(p: Promise<unknown>, type: ErrType, name: string, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof type, `${what}: expected ${type.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok((e as Error).message.includes(name), `${what}: message "${(e as Error).message}" names ${name}`);
    return true;
  }, what);
}

const notHandles: unknown[] = ['1', 1.5, null, undefined, {}, NaN];

for (const backend of BACKENDS) {
  describe(`argument checking (${backend})`, { skip: skipFor(backend) }, () => {
    let ch: Channel, listener: Listener, lh: number, conn = -1, peer: net.Socket | undefined;
    before(async () => {
      ch = createChannel({ backend });
      listener = await openListener(backend);
      lh = ch.register(listener, 'L');
      ch.onEvent((ev) => { if (ev.type === 'accept') conn = ev.handle; });
      ch.accept(lh);
      peer = await connectSocket(listener.port);
      await waitFor(() => conn >= 0, 'the accept');
    });
    after(async () => {
      peer?.destroy();
      let gone = false;
      ch.onEvent((ev) => { if (ev.type === 'disconnect' && ev.handle === lh) gone = true; });
      ch.unregister(lh);
      await waitFor(() => gone, 'the listener handle to go');
      listener.close();
      ch.close();
    });

    it('createChannel', () => {
      throwsNaming(() => createChannel('x' as never), TypeError, 'options', 'createChannel("x")');
      throwsNaming(() => createChannel({ backend: 'bogus' as never }), TypeError, 'backend', 'backend: "bogus"');
      throwsNaming(() => createChannel({ backend, cpu: -1 }), RangeError, 'cpu', 'cpu: -1');
      throwsNaming(() => createChannel({ backend, cpu: 1.5 }), RangeError, 'cpu', 'cpu: 1.5');
      throwsNaming(() => createChannel({ backend, batch: 0 }), RangeError, 'batch', 'batch: 0');
      throwsNaming(() => createChannel({ backend, limits: { files: -3 } }), TypeError, 'limits.files', 'limits.files: -3');
    });

    it('register', () => {
      throwsNaming(() => ch.register('x' as never), TypeError, 'target', 'register("x")');
      throwsNaming(() => ch.register(-1), TypeError, 'target', 'register(-1)');
      throwsNaming(() => ch.register(1.5), TypeError, 'target', 'register(1.5)');
      throwsNaming(() => ch.register({} as never), TypeError, 'target', 'register({})');
      throwsNaming(() => ch.register(null as never), TypeError, 'target', 'register(null)');
    });

    it('register: member out of range (native listener)', { skip: uringSkip }, () => {
      const l = listen({ port: 0 });
      try {
        throwsNaming(() => ch.register(l, 'x', { member: 1 }), RangeError, 'member', 'member: 1 of a 1-member listener');
        throwsNaming(() => ch.register(l, 'x', { member: -1 }), RangeError, 'member', 'member: -1');
        throwsNaming(() => ch.register(l, 'x', { member: 0.5 }), RangeError, 'member', 'member: 0.5');
      } finally { l.close(); }
    });

    it('register: a cpuMask that matches no partition is a RangeError naming cpuMask', { skip: uringSkip }, () => {
      const l = listen({ port: 0, partitions: [[0], [1]] });
      try {
        throwsNaming(() => ch.register(l, 'x', { cpuMask: [7] }), RangeError, 'cpuMask', 'cpuMask [7] of a [[0],[1]] listener');
        throwsNaming(() => ch.register(l, 'x', { cpuMask: [0, 1] }), RangeError, 'cpuMask', 'cpuMask [0,1] of a [[0],[1]] listener');
      } finally { l.close(); }
    });

    it('accept', () => {
      for (const bad of notHandles) throwsNaming(() => ch.accept(bad as never), TypeError, 'handle', `accept(${String(bad)})`);
      throwsNaming(() => ch.accept(lh, { count: 0 }), RangeError, 'count', 'count: 0');
      throwsNaming(() => ch.accept(lh, { count: 1.5 }), RangeError, 'count', 'count: 1.5');
      throwsNaming(() => ch.accept(lh, { count: 5000 }), RangeError, 'count', 'count: 5000');
      throwsNaming(() => ch.accept(lh, { count: -Infinity }), RangeError, 'count', 'count: -Infinity');
      throwsNaming(() => ch.accept(lh, { lwsocket: 'yes' as never }), TypeError, 'lwsocket', 'lwsocket: "yes"');
    });

    it('read, pause, resume, unregister, setCookie, incomingCpu', () => {
      for (const bad of notHandles) {
        throwsNaming(() => ch.read(bad as never), TypeError, 'handle', `read(${String(bad)})`);
        throwsNaming(() => ch.pause(bad as never), TypeError, 'handle', `pause(${String(bad)})`);
        throwsNaming(() => ch.resume(bad as never), TypeError, 'handle', `resume(${String(bad)})`);
        throwsNaming(() => ch.unregister(bad as never), TypeError, 'handle', `unregister(${String(bad)})`);
        throwsNaming(() => ch.setCookie(bad as never, 1), TypeError, 'handle', `setCookie(${String(bad)})`);
        throwsNaming(() => ch.incomingCpu(bad as never), TypeError, 'handle', `incomingCpu(${String(bad)})`);
      }
    });

    it('write', () => {
      const d = Buffer.alloc(10);
      for (const bad of notHandles) throwsNaming(() => ch.write(bad as never, d), TypeError, 'handle', `write(${String(bad)})`);
      for (const bad of ['text', 5, null, [1, 2], new ArrayBuffer(4), new Uint16Array(2)]) {
        throwsNaming(() => ch.write(conn, bad as never), TypeError, 'data', `write(data: ${Object.prototype.toString.call(bad)})`);
      }
      throwsNaming(() => ch.write(conn, d, -1), RangeError, 'offset', 'offset -1');
      throwsNaming(() => ch.write(conn, d, 11), RangeError, 'offset', 'offset 11 of 10');
      throwsNaming(() => ch.write(conn, d, 1.5), RangeError, 'offset', 'offset 1.5');
      throwsNaming(() => ch.write(conn, d, '1' as never), RangeError, 'offset', 'offset "1"');
      throwsNaming(() => ch.write(conn, d, 0, 11), RangeError, 'length', 'length 11 of 10');
      throwsNaming(() => ch.write(conn, d, 5, 6), RangeError, 'length', 'length 6 at 5 of 10');
      throwsNaming(() => ch.write(conn, d, 0, -1), RangeError, 'length', 'length -1');
      throwsNaming(() => ch.write(conn, d, 0, 2.5), RangeError, 'length', 'length 2.5');
      throwsNaming(() => ch.write(lh, d), Error, 'listener', 'write to a listener');
      assert.equal(ch.pendingBytes(conn), 0, 'nothing was queued by the rejected calls');
    });

    it('writev and writeAscii', () => {
      throwsNaming(() => ch.writev(conn, 'x' as never), TypeError, 'chunks', 'writev("x")');
      throwsNaming(() => ch.writev(conn, [Buffer.from('ok'), 'no' as never]), TypeError, 'chunks[1]', 'writev([buf, "no"])');
      assert.equal(ch.pendingBytes(conn), 0, 'a rejected writev queues nothing, not even its valid chunks');
      for (const bad of notHandles) throwsNaming(() => ch.writev(bad as never, [Buffer.from('x')]), TypeError, 'handle', `writev(${String(bad)})`);
      throwsNaming(() => ch.writeAscii(conn, 5 as never), TypeError, 'text', 'writeAscii(5)');
      for (const bad of notHandles) throwsNaming(() => ch.writeAscii(bad as never, 'x'), TypeError, 'handle', `writeAscii(${String(bad)})`);
    });

    it('disconnect', () => {
      for (const bad of notHandles) throwsNaming(() => ch.disconnect(bad as never), TypeError, 'handle', `disconnect(${String(bad)})`);
      throwsNaming(() => ch.disconnect(conn, 'yes' as never), TypeError, 'abort', 'disconnect(h, "yes")');
      assert.ok(ch.isOpen(conn), 'the rejected call closed nothing');
    });

    it('connect', () => {
      throwsNaming(() => ch.connect(5 as never, 80), TypeError, 'host', 'connect(5)');
      throwsNaming(() => ch.connect('not an address', 80), TypeError, 'host', 'connect("not an address")');
      throwsNaming(() => ch.connect('127.0.0.1', 0), RangeError, 'port', 'port 0');
      throwsNaming(() => ch.connect('127.0.0.1', 65536), RangeError, 'port', 'port 65536');
      throwsNaming(() => ch.connect('127.0.0.1', 1.5), RangeError, 'port', 'port 1.5');
      throwsNaming(() => ch.connect('127.0.0.1', '80' as never), RangeError, 'port', 'port "80"');
      throwsNaming(() => ch.connect('127.0.0.1', 80, undefined, { localAddress: 5 as never }), TypeError, 'localAddress', 'localAddress: 5');
      throwsNaming(() => ch.connect('127.0.0.1', 80, undefined, { localAddress: 'nowhere' }), TypeError, 'localAddress', 'localAddress: "nowhere"');
      assert.equal(ch.handles, 2, 'no handle leaked by the rejected calls');
    });

    it('toFd, dispatch, onEvent, batchThreshold', async () => {
      for (const bad of notHandles) await rejectsNaming(ch.toFd(bad as never), TypeError, 'handle', `toFd(${String(bad)})`);
      throwsNaming(() => ch.onEvent(5 as never), TypeError, 'handler', 'onEvent(5)');
      const handler = (): void => {};
      ch.onEvent(null);
      try {
        await rejectsNaming(ch.dispatch('x' as never), TypeError, 'timeoutMs', 'dispatch("x")');
        await rejectsNaming(ch.dispatch(NaN), TypeError, 'timeoutMs', 'dispatch(NaN)');
      } finally { ch.onEvent(handler); }
      throwsNaming(() => { ch.batchThreshold = 0; }, RangeError, 'batchThreshold', 'batchThreshold = 0');
      throwsNaming(() => { ch.batchThreshold = 1.5; }, RangeError, 'batchThreshold', 'batchThreshold = 1.5');
      throwsNaming(() => { ch.batchThreshold = ch.limits.requestRows + 1; }, RangeError, 'batchThreshold', 'batchThreshold above requestRows');
      ch.batchThreshold = 1;
      assert.equal(ch.batchThreshold, 1);
    });
  });
}

describe('argument checking: listen and listenPortable', () => {
  it('listen', { skip: uringSkip }, () => {
    throwsNaming(() => listen(5 as never), TypeError, 'options', 'listen(5)');
    throwsNaming(() => listen({ host: 'example.com' }), TypeError, 'host', 'host: example.com');
    throwsNaming(() => listen({ port: -1 }), RangeError, 'port', 'port -1');
    throwsNaming(() => listen({ port: 65536 }), RangeError, 'port', 'port 65536');
    throwsNaming(() => listen({ port: 1.5 }), RangeError, 'port', 'port 1.5');
    throwsNaming(() => listen({ backlog: 0 }), RangeError, 'backlog', 'backlog 0');
    throwsNaming(() => listen({ deferAccept: -1 }), RangeError, 'deferAccept', 'deferAccept -1');
    throwsNaming(() => listen({ deferAccept: 0.5 }), RangeError, 'deferAccept', 'deferAccept 0.5');
    throwsNaming(() => listen({ ipv6Only: 1 as unknown as boolean }), TypeError, 'ipv6Only', 'ipv6Only 1');
    throwsNaming(() => listen({ reusePort: 'yes' as unknown as boolean }), TypeError, 'reusePort', 'reusePort "yes"');
    throwsNaming(() => listen({ partitions: 'x' as never }), TypeError, 'partitions', 'partitions "x"');
    throwsNaming(() => listen({ partitions: [[]] }), TypeError, 'partitions[0]', 'partitions [[]]');
    throwsNaming(() => listen({ partitions: [[0], [0]] }), RangeError, 'partitions', 'overlapping partitions');
    throwsNaming(() => listen({ partitions: [[-1]] }), RangeError, 'partitions[0]', 'CPU -1');
    throwsNaming(() => listen({ members: 0 }), RangeError, 'members', 'members 0');
  });
  it('listenPortable', async () => {
    throwsNaming(() => { void listenPortable({ host: 'example.com' }); }, TypeError, 'host', 'host: example.com');
  });
});
