// 100,000 short connections (MegaPipe's headline workload): connect, send a small message, verify its echo, close.
// At most 200 in flight; source addresses spread over 127.0.0.2–127.0.0.200 so that client TIME_WAIT sockets do not
// exhaust the ephemeral ports of one address. Every connection is counted on both sides.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, echoClient, prng, randomBytes, runPool, skipFor, startEchoServer, waitFor, withTimeout } from './helpers.js';
import { createChannel } from '../src/index.js';

// The portable backend runs the same loop; it is the oracle, not the subject, and node:net (both ends in this one
// process) is the bottleneck either way, so it gets the same count unless SHORT_PORTABLE overrides it.
const COUNT: Record<string, number> = {
  uring: Number(process.env.SHORT_URING ?? 100_000),
  portable: Number(process.env.SHORT_PORTABLE ?? 100_000),
};
const IN_FLIGHT = 200;
const SOURCES = 199;   // 127.0.0.2 .. 127.0.0.200

for (const backend of BACKENDS) {
  const count = COUNT[backend]!;
  describe(`${count} short connections (${backend})`, { skip: skipFor(backend) }, () => {
    it('each one is accepted, echoed byte for byte and closed', async () => {
      const rand = prng(42);
      const messages = Array.from({ length: 64 }, (_, i) => randomBytes(rand, 1 + ((i * 37) % 200)));
      const server = await startEchoServer(backend);
      let sent = 0;
      try {
        await withTimeout(runPool(count, IN_FLIGHT, async (i) => {
          const msg = messages[i % messages.length]!;
          await echoClient(server.port, msg, { localAddress: `127.0.0.${2 + (i % SOURCES)}`, timeoutMs: 30000 });
          sent += msg.byteLength;
        }), 240000, `${count} short connections`);
        assert.equal(server.counts.accepted, count);
        assert.equal(server.counts.bytes, sent);
        assert.deepEqual(server.errors, []);
      } finally {
        await server.close();
      }
      assert.equal(server.counts.disconnected, count);
      assert.equal(server.ch.handles, 0);
    });

    it('the same with a channel as the client (connect() with localAddress), both ends on one thread', async () => {
      const server = await startEchoServer(backend);
      const client = createChannel({ backend });
      const rand = prng(43);
      const messages = Array.from({ length: 64 }, (_, i) => randomBytes(rand, 1 + ((i * 53) % 200)));
      const msgOf = new Map<number, { msg: Uint8Array; got: number }>();
      let started = 0, finished = 0, sent = 0;
      const failures: string[] = [];
      const start = () => {
        const i = started++;
        const msg = messages[i % messages.length]!;
        const h = client.connect('127.0.0.1', server.port, i, { localAddress: `127.0.0.${2 + (i % SOURCES)}` });
        msgOf.set(h, { msg, got: 0 });
        client.write(h, msg);   // queued until the connect completes
        sent += msg.byteLength;
      };
      try {
        await withTimeout(new Promise<void>((resolve) => {
          client.onEvent((ev) => {
            const h = ev.handle, c = msgOf.get(h)!;
            switch (ev.type) {
              case 'connect': client.read(h); break;
              case 'read':
                if (ev.result === 0) { failures.push(`#${String(ev.cookie)}: EOF after ${c.got} B`); client.disconnect(h); break; }
                if (Buffer.compare(ev.buffer.subarray(ev.offset, ev.offset + ev.result), c.msg.subarray(c.got, c.got + ev.result)) !== 0) failures.push(`#${String(ev.cookie)}: bytes differ`);
                c.got += ev.result;
                if (c.got === c.msg.byteLength) client.disconnect(h);   // verified: close (the client closes first)
                break;
              case 'error': failures.push(`#${String(ev.cookie)}: ${ev.code}`); client.disconnect(h, true); break;
              case 'disconnect':
                msgOf.delete(h);
                if (++finished === count) resolve();
                else if (started < count && failures.length === 0) start();
                else if (failures.length > 0 && finished === started) resolve();
                break;
              default: break;
            }
          });
          for (let i = 0; i < Math.min(IN_FLIGHT, count); i++) start();
        }), 240000, `${count} short channel-client connections`);
        assert.deepEqual(failures.slice(0, 10), []);
        assert.equal(finished, count);
        await waitFor(() => server.counts.disconnected === count, 'the server side to close');
        assert.equal(server.counts.accepted, count);
        assert.equal(server.counts.bytes, sent);
        assert.deepEqual(server.errors, []);
        assert.equal(client.handles, 0);
      } finally {
        client.close();
        await server.close();
      }
    });
  });
}
