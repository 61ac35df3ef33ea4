// What a server knows about a peer: Conn.remoteAddress/remotePort/remoteFamily/localAddress/localPort on both
// backends (lwsockets and regular fds on io_uring) and on serveNet, Channel.socketAddress for a client connection,
// HttpRequest.ip; conn.write(string) sends UTF-8 as node:net does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { createChannel, listen, listenPortable, serveChannel, serveNet, type Conn, type Listener, type MpEvent } from '../src/index.js';
import { BACKENDS, skipFor, waitFor, type BackendKind } from './helpers.js';
import { exchange, startApp, TRANSPORTS, skipTransport } from './http-helpers.test.js';

interface Seen { remoteAddress?: string; remotePort?: number; remoteFamily?: string; localAddress?: string; localPort?: number }

function record(conn: Conn, seen: Seen[]): void {
  seen.push({ remoteAddress: conn.remoteAddress, remotePort: conn.remotePort, remoteFamily: conn.remoteFamily, localAddress: conn.localAddress, localPort: conn.localPort });
}

/** Connects, sends `text`, returns the client's own port and everything it received until the server closed. */
async function client(port: number, host: string, text: string): Promise<{ localPort: number; got: Buffer }> {
  const c = net.connect({ port, host });
  await once(c, 'connect');
  const localPort = c.localPort!;
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.write(text);
  await once(c, 'close');
  return { localPort, got: Buffer.concat(chunks) };
}

const UTF8 = 'héllo wörld ✓ — 𝄞';

async function openListener(backend: BackendKind, host: string): Promise<Listener> {
  return backend === 'uring' ? listen({ host, port: 0 }) : listenPortable({ host, port: 0 });
}

function ipv6Loopback(): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

for (const backend of BACKENDS) {
  for (const lwsocket of backend === 'uring' ? [true, false] : [true]) {
    describe(`Conn addresses (${backend}${backend === 'uring' ? (lwsocket ? ', lwsockets' : ', regular fds') : ''})`, { skip: skipFor(backend) }, () => {
      for (const host of ['127.0.0.1', '::1']) {
        it(`remote and local address, port and family (${host}); write(string) is UTF-8`, async (t) => {
          if (host === '::1' && !(await ipv6Loopback())) { t.skip('no IPv6 loopback here'); return; }
          const ch = createChannel({ backend });
          const l = await openListener(backend, host);
          const seen: Seen[] = [];
          try {
            const srv = serveChannel(ch, l, (conn) => ({
              data() { record(conn, seen); conn.write(UTF8); conn.end(); },
            }), { lwsocket });
            const r = await client(l.port, host, 'x');
            assert.equal(r.got.toString('utf8'), UTF8);
            assert.deepEqual(r.got, Buffer.from(UTF8, 'utf8'));
            assert.deepEqual(seen, [{ remoteAddress: host, remotePort: r.localPort, remoteFamily: host === '::1' ? 'IPv6' : 'IPv4', localAddress: host, localPort: l.port }]);
            await srv.close(500);
          } finally { ch.close(); l.close(); }
        });
      }

      it('Channel.socketAddress of a client connection (connect) names the server; bad arguments throw', async () => {
        const server = net.createServer((s) => s.end());
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const port = (server.address() as net.AddressInfo).port;
        const ch = createChannel({ backend });
        try {
          const events: string[] = [];
          let remote: unknown, local: unknown;
          const h = ch.connect('127.0.0.1', port);
          ch.onEvent((ev: MpEvent) => {
            events.push(ev.type);
            if (ev.type === 'connect') { remote = ch.socketAddress(h, 'remote'); local = ch.socketAddress(h, 'local'); ch.disconnect(h); }
          });
          await waitFor(() => events.includes('disconnect'), 'the client connection closed');
          assert.deepEqual(remote, { address: '127.0.0.1', port, family: 'IPv4' });
          assert.equal((local as { address: string }).address, '127.0.0.1');
          assert.ok((local as { port: number }).port > 0);
          assert.throws(() => ch.socketAddress(h, 'remote'), (e: Error & { code?: string }) => e.code === 'MP_ERR_BAD_HANDLE');
          assert.throws(() => ch.socketAddress(1.5, 'remote'), TypeError);
        } finally { ch.close(); server.close(); }
      });
    });
  }
}

describe('Conn addresses (serveNet)', () => {
  it('remote and local address, port and family; write(string) is UTF-8', async () => {
    const seen: Seen[] = [];
    const srv = await serveNet((conn) => ({ data() { record(conn, seen); conn.write(UTF8); conn.end(); } }), { port: 0 });
    try {
      const r = await client(srv.port, '127.0.0.1', 'x');
      assert.deepEqual(r.got, Buffer.from(UTF8, 'utf8'));
      assert.deepEqual(seen, [{ remoteAddress: '127.0.0.1', remotePort: r.localPort, remoteFamily: 'IPv4', localAddress: '127.0.0.1', localPort: srv.port }]);
    } finally { await srv.close(500); }
  });
});

for (const transport of TRANSPORTS) {
  describe(`HttpRequest.ip (${transport})`, { skip: skipTransport(transport) }, () => {
    it('is the client\'s address', async () => {
      const srv = await startApp({ handler: (req, res) => res.send(`${req.ip}`) }, transport);
      try {
        const r = await exchange(srv.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
        assert.equal(r.body.toString(), '127.0.0.1');
        r.client.destroy();
      } finally { await srv.close(); }
    });
  });
}
