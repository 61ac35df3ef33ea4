// Echo across 1,000 concurrent connections with seeded random message sizes from 1 B to 1 MiB (log-uniform, so
// the total stays near 75 MB each way): every byte is verified by the client, the server sees every connection come
// and go, and no error is reported. Runs against both backends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, echoClient, logUniform, prng, randomBytes, skipFor, startEchoServer, withTimeout } from './helpers.js';

const CONNECTIONS = 1000;
const MIN = 1, MAX = 1 << 20;

for (const backend of BACKENDS) {
  describe(`echo, ${CONNECTIONS} concurrent connections (${backend})`, { skip: skipFor(backend) }, () => {
    // uring: lwsockets (the default) and regular fds; portable: node:net sockets (lwsocket does not apply)
    for (const lwsocket of backend === 'uring' ? [true, false] : [true]) {
    it(`returns every byte of messages from 1 B to 1 MiB${backend === 'uring' ? (lwsocket ? ' (lwsockets)' : ' (regular fds)') : ''}`, async () => {
      const rand = prng(0x5eed + (backend === 'uring' ? 1 : 2) + (lwsocket ? 0 : 10));
      const sizes = Array.from({ length: CONNECTIONS }, () => logUniform(rand, MIN, MAX));
      sizes[0] = MIN; sizes[1] = MAX;   // both ends of the range, always
      const total = sizes.reduce((a, b) => a + b, 0);
      assert.ok(total < 300 * 1024 * 1024, `total ${total} B stays bounded`);
      // one pool of random bytes; each connection sends a window of it starting at its own offset
      const pool = randomBytes(rand, 2 * MAX);
      const server = await startEchoServer(backend, { lwsocket });
      try {
        const clients = sizes.map((n, i) => {
          const off = (i * 7919) % MAX;
          return echoClient(server.port, pool.subarray(off, off + n), { timeoutMs: 90000 });
        });
        const got = await withTimeout(Promise.all(clients), 120000, 'all echo clients');
        assert.equal(got.reduce((a, b) => a + b, 0), total);
        assert.equal(server.counts.accepted, CONNECTIONS);
        assert.equal(server.counts.bytes, total);
        assert.deepEqual(server.errors, []);
        const st = server.ch.stats();
        assert.equal(st.accepted, CONNECTIONS);
        assert.equal(st.bytesRead, total);
      } finally {
        await server.close();
      }
      assert.equal(server.counts.disconnected, CONNECTIONS);
    });
    }
  });
}
