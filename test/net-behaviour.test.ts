// megapipe/net against node:net: one behaviour suite, the same assertions run on both (server and client from the
// module under test). Event order, half-close, back-pressure and drain, timeouts, resets, pause/resume, large
// transfers byte for byte, server close with open connections, addresses and error details.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { once } from 'node:events';
import { lookup } from 'node:dns/promises';
import { pipeline } from 'node:stream/promises';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import * as mnet from '../src/net/index.js';
import { prng, randomBytes, uringSkip, waitFor, withTimeout } from './helpers.js';

interface Impl {
  name: string;
  createServer(options?: net.ServerOpts, listener?: (s: net.Socket) => void): net.Server;
  connect(port: number, host: string): net.Socket;
  /** Makes a server made elsewhere (node:http's) listen through this module. */
  attach(server: net.Server, port: number, host: string): void;
  skip: string | false;
}

const IMPLS: Impl[] = [
  { name: 'node:net', createServer: (o, l) => net.createServer(o ?? {}, l), connect: (p, h) => net.connect(p, h), attach: (s, p, h) => { s.listen(p, h); }, skip: false },
  // the megapipe client too: both ends of each connection are megapipe Sockets
  { name: 'megapipe/net', createServer: (o, l) => mnet.createServer(o ?? {}, l), connect: (p, h) => mnet.connect(p, h) as unknown as net.Socket, attach: (s, p, h) => { mnet.attach(s, { port: p, host: h }); }, skip: uringSkip },
];

const T = 20_000;

async function listening(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await withTimeout(once(server, 'listening'), T, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// bounded: a close that never completes fails the test naming what stayed open (a full-suite run once hung here)
async function closeServer(server: net.Server): Promise<void> {
  if (!server.listening) return;
  const open = await new Promise<number>((resolve) => server.getConnections((_, n) => resolve(n)));
  await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), T, `server.close (${open} connection(s) open when it was called)`);
}

function collect(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => { s.once('end', () => resolve(Buffer.concat(parts))); s.once('error', reject); });
}

function record(s: net.Socket, names: string[], into: string[]): void {
  for (const n of names) s.on(n, (x: unknown) => into.push(n === 'close' ? `close:${String(x)}` : n === 'error' ? `error:${(x as NodeJS.ErrnoException).code}` : n));
}

for (const impl of IMPLS) {
  describe(`net behaviour: ${impl.name}`, { skip: impl.skip }, () => {
    it('event order: connection, data, end, finish, close(false) on the server; connect, ready, data, end, close(false) on the client', async () => {
      const serverEvents: string[] = [];
      const server = impl.createServer({}, (s) => {
        record(s, ['end', 'finish', 'close'], serverEvents);
        let got = '';
        s.setEncoding('latin1');
        s.on('data', (d: string) => { if (got === '') serverEvents.push('data'); got += d; });
        s.on('end', () => s.write(`pong:${got}`));
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      const clientEvents: string[] = [];
      record(c, ['connect', 'ready', 'end', 'close'], clientEvents);
      c.once('connect', () => c.end('ping'));
      const body = await withTimeout(collect(c), T, 'the reply');
      await withTimeout(once(c, 'close'), T, 'client close');
      await waitFor(() => serverEvents.includes('close:false'), 'server close');
      assert.equal(body.toString('latin1'), 'pong:ping');
      assert.deepEqual(serverEvents, ['data', 'end', 'finish', 'close:false']);
      assert.deepEqual(clientEvents, ['connect', 'ready', 'end', 'close:false']);
      await closeServer(server);
    });

    it('half-close: with allowHalfOpen the server writes after the peer\'s FIN, then ends', async () => {
      const server = impl.createServer({ allowHalfOpen: true }, (s) => {
        s.resume();
        s.on('end', () => {
          setImmediate(() => {
            assert.equal(s.writable, true);
            assert.equal(s.readyState, 'writeOnly');
            s.write('after ');
            s.end('end');
          });
        });
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      c.end('bye');
      const body = await withTimeout(collect(c), T, 'data after half-close');
      assert.equal(body.toString(), 'after end');
      await withTimeout(once(c, 'close'), T, 'close');
      await closeServer(server);
    });

    it('back-pressure: write() returns false while the peer does not read, writes wait for \'drain\', every byte arrives', async () => {
      // more than the kernel's buffers on both ends can hold (net.ipv4.tcp_rmem/wmem maxima): a writer that honours
      // write()'s return value cannot finish while the peer does not read
      const chunk = randomBytes(prng(7), 4 * 1024);
      const total = 96 * 1024 * 1024;
      let written = 0, falses = 0, drains = 0, done = false;
      let serverSocket: net.Socket | undefined;
      const server = impl.createServer({}, (s) => {
        serverSocket = s;
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            if (!s.write(chunk)) { falses++; s.once('drain', () => { drains++; pump(); }); return; }
          }
          done = true;
          s.end();
        };
        pump();
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      c.pause();
      await waitFor(() => falses > 0, 'write() returning false');
      for (let i = 0; i < 20; i++) await immediate();
      await sleep(50);
      assert.equal(done, false, 'the writer finished although the peer read nothing');
      assert.ok(written < total);
      assert.equal(serverSocket!.writableNeedDrain, true);
      // now read: every byte, in order, compared as it arrives
      let got = 0, same = true;
      c.on('data', (d: Buffer) => {
        for (let i = 0; i < d.length; i++) if (d[i] !== chunk[(got + i) % chunk.length]) { same = false; break; }
        got += d.length;
      });
      c.resume();
      await withTimeout(once(c, 'end'), 60_000, 'every byte');
      assert.equal(got, total);
      assert.ok(same, 'the bytes differ');
      assert.ok(drains > 0 && drains <= falses);
      await closeServer(server);
    });

    it('timeouts: setTimeout emits \'timeout\' on an idle socket (timeout property), 0 turns it off', async () => {
      let timeouts = 0;
      let serverSocket: net.Socket | undefined;
      const server = impl.createServer({}, (s) => {
        serverSocket = s;
        s.resume();
        s.setTimeout(30, () => {
          timeouts++;
          assert.equal(s.timeout, 30);
          s.setTimeout(0);
          assert.equal(s.timeout, 0);
          s.end('timed out');
        });
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      const body = await withTimeout(collect(c), T, 'the timeout');
      assert.equal(body.toString(), 'timed out');
      assert.equal(timeouts, 1);
      assert.equal(serverSocket!.timeout, 0);
      c.end();
      await closeServer(server);
    });

    it('resets: a peer\'s RST is \'error\' ECONNRESET (syscall read), then close(true)', async () => {
      const events: string[] = [];
      let err: NodeJS.ErrnoException | undefined;
      const server = impl.createServer({}, (s) => {
        record(s, ['end', 'close'], events);
        s.on('error', (e: NodeJS.ErrnoException) => { err = e; events.push(`error:${e.code}`); });
        s.resume();
        s.write('x');
      });
      const port = await listening(server);
      // the resetting client is node's (a real RST, SO_LINGER 0) for both implementations
      const c = net.connect(port, '127.0.0.1');
      await withTimeout(once(c, 'data'), T, 'first byte');
      c.resetAndDestroy();
      await waitFor(() => events.some((e) => e.startsWith('close:')), 'server close');
      assert.deepEqual(events, ['error:ECONNRESET', 'close:true']);
      assert.equal(err!.syscall, 'read');
      assert.equal(err!.errno, -104);
      assert.equal(err!.message, 'read ECONNRESET');
      await closeServer(server);
    });

    it('writes to a reset peer fail with EPIPE or ECONNRESET, never throw', async () => {
      let err: NodeJS.ErrnoException | undefined;
      let closed = false;
      const server = impl.createServer({}, (s) => {
        s.on('error', (e: NodeJS.ErrnoException) => { err = e; });
        s.on('close', () => { closed = true; });
        s.once('data', () => {
          // keep writing until the reset is seen (bounded)
          let n = 0;
          const more = (): void => { if (!s.destroyed && n++ < 2000) { s.write(Buffer.alloc(16 * 1024)); setImmediate(more); } };
          more();
        });
      });
      const port = await listening(server);
      const c = net.connect(port, '127.0.0.1');
      c.write('go');
      await withTimeout(once(c, 'data'), T, 'first bytes');
      c.resetAndDestroy();
      await waitFor(() => closed, 'server close');
      assert.ok(err !== undefined && ['EPIPE', 'ECONNRESET'].includes(err.code!), String(err?.code));
      await closeServer(server);
    });

    it('pause/resume: a paused socket emits no data until resumed; then every byte, in order', async () => {
      const rand = prng(11);
      const payload = randomBytes(rand, 2 * 1024 * 1024);
      let dataWhilePaused = 0;
      let release: () => void = () => {};
      const released = new Promise<void>((r) => { release = r; });
      let received: Promise<Buffer> | undefined;
      const server = impl.createServer({}, (s) => {
        s.pause();
        s.on('data', () => { if (s.isPaused()) dataWhilePaused++; });
        received = new Promise((resolve) => {
          void released.then(async () => {
            const parts: Buffer[] = [];
            for await (const chunk of s) parts.push(chunk as Buffer);
            resolve(Buffer.concat(parts));
          });
        });
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      c.end(payload);
      await waitFor(() => received !== undefined, 'connection');
      for (let i = 0; i < 20; i++) await immediate();
      await sleep(20);
      assert.equal(dataWhilePaused, 0);
      release();
      const body = await withTimeout(received!, T, 'every byte');
      assert.ok(body.equals(payload), `received ${body.length} of ${payload.length} bytes`);
      c.destroy();
      await closeServer(server);
    });

    it('large transfer: 24 MiB echoed through pipeline(), byte for byte; bytesRead/bytesWritten count them', async () => {
      const rand = prng(3);
      const payload = randomBytes(rand, 24 * 1024 * 1024);
      let serverSocket: net.Socket | undefined;
      const server = impl.createServer({}, (s) => { serverSocket = s; void pipeline(s, s).catch(() => {}); });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      const got = collect(c);
      // random chunk sizes, written with back-pressure
      let off = 0;
      while (off < payload.length) {
        const n = Math.min(payload.length - off, 1 + Math.floor(rand() * 200_000));
        if (!c.write(payload.subarray(off, off + n))) await once(c, 'drain');
        off += n;
      }
      c.end();
      const body = await withTimeout(got, 60_000, 'the echo');
      assert.equal(body.length, payload.length);
      assert.ok(body.equals(payload));
      await withTimeout(once(c, 'close'), T, 'close');
      assert.equal(serverSocket!.bytesRead, payload.length);
      assert.equal(serverSocket!.bytesWritten, payload.length);
      assert.equal(c.bytesWritten, payload.length);
      assert.equal(c.bytesRead, payload.length);
      await closeServer(server);
    });

    it('server close with an open connection: not listening at once, \'close\' once the connection ends, then connects are refused', async () => {
      let conn: net.Socket | undefined;
      const server = impl.createServer({}, (s) => { conn = s; s.resume(); s.on('end', () => s.end()); });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      await waitFor(() => conn !== undefined, 'connection');
      let closed = false;
      server.close(() => { closed = true; });
      assert.equal(server.listening, false);
      assert.equal(server.address(), null);
      const n = await new Promise<number>((resolve, reject) => server.getConnections((e, k) => (e ? reject(e) : resolve(k))));
      assert.equal(n, 1);
      for (let i = 0; i < 10; i++) await immediate();
      assert.equal(closed, false);
      c.end();
      await waitFor(() => closed, 'server close');
      // closed: the port refuses connections
      const refused = impl.connect(port, '127.0.0.1');
      const e = await withTimeout(once(refused, 'error'), T, 'refusal') as [NodeJS.ErrnoException];
      assert.equal(e[0].code, 'ECONNREFUSED');
    });

    it('addresses: server.address(), the sockets\' remote and local ends, socket.address()', async () => {
      let s1: net.Socket | undefined;
      const server = impl.createServer({}, (s) => { s1 = s; s.resume(); });
      const port = await listening(server);
      assert.deepEqual(server.address(), { address: '127.0.0.1', family: 'IPv4', port });
      const c = impl.connect(port, '127.0.0.1');
      await withTimeout(once(c, 'connect'), T, 'connect');
      await waitFor(() => s1 !== undefined, 'connection');
      assert.equal(s1!.remoteAddress, '127.0.0.1');
      assert.equal(s1!.remoteFamily, 'IPv4');
      assert.equal(s1!.remotePort, c.localPort);
      assert.equal(s1!.localAddress, '127.0.0.1');
      assert.equal(s1!.localPort, port);
      assert.deepEqual(s1!.address(), { address: '127.0.0.1', family: 'IPv4', port });
      assert.equal(c.remotePort, port);
      assert.equal(c.remoteAddress, '127.0.0.1');
      assert.equal(s1!.readyState, 'open');
      assert.equal(s1!.pending, false);
      assert.equal(c.connecting, false);
      c.destroy();
      await closeServer(server);
    });

    it('errors: EADDRINUSE and ECONNREFUSED with node\'s code, errno, syscall, address, port and message', async () => {
      const a = impl.createServer();
      const port = await listening(a);
      const b = impl.createServer();
      b.listen(port, '127.0.0.1');
      const [e] = await withTimeout(once(b, 'error'), T, 'EADDRINUSE') as [NodeJS.ErrnoException & { address: string; port: number }];
      assert.equal(e.code, 'EADDRINUSE');
      assert.equal(e.errno, -98);
      assert.equal(e.syscall, 'listen');
      assert.equal(e.address, '127.0.0.1');
      assert.equal(e.port, port);
      assert.equal(e.message, `listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      assert.equal(b.listening, false);
      await closeServer(a);
      const c = impl.connect(port, '127.0.0.1');
      const events: string[] = [];
      record(c, ['connect', 'error', 'close'], events);
      const [r] = await withTimeout(once(c, 'error'), T, 'ECONNREFUSED') as [NodeJS.ErrnoException & { address: string; port: number }];
      assert.equal(r.code, 'ECONNREFUSED');
      assert.equal(r.errno, -111);
      assert.equal(r.syscall, 'connect');
      assert.equal(r.address, '127.0.0.1');
      assert.equal(r.port, port);
      assert.equal(r.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
      await waitFor(() => events.length === 2, 'close');
      assert.deepEqual(events, ['error:ECONNREFUSED', 'close:true']);
    });

    it('resetAndDestroy: the peer sees ECONNRESET (not a clean end); setNoDelay/setKeepAlive are taken on an open socket', async () => {
      let serverSocket: net.Socket | undefined;
      const server = impl.createServer({}, (s) => { serverSocket = s; s.on('data', () => {}); });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      try {
        await withTimeout(once(c, 'connect'), T, 'connect');
        await waitFor(() => serverSocket !== undefined, 'the connection');
        const s = serverSocket!;
        assert.equal(s.setNoDelay(false), s);
        assert.equal(s.setKeepAlive(true, 30_000), s);
        assert.equal(s.setNoDelay(true), s);
        assert.equal(s.setKeepAlive(false), s);
        // the connection still carries bytes after the options
        s.write('after options');
        const [d] = await withTimeout(once(c, 'data'), T, 'bytes') as [Buffer];
        assert.equal(d.toString(), 'after options');
        const seen = withTimeout(new Promise<string>((resolve) => {
          c.once('error', (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`));
          c.once('end', () => resolve('end'));
        }), T, 'the peer to see the reset');
        const closed = once(s, 'close');
        s.resetAndDestroy();
        assert.equal(await seen, 'error:ECONNRESET');
        await withTimeout(closed, T, 'close');
        assert.equal(s.destroyed, true);
      } finally {
        c.destroy();
        await closeServer(server);
      }
    });

    it('ipv6Only: a server on :: with ipv6Only refuses IPv4 and serves ::1; without it, :: serves both', async () => {
      const echo = (s: net.Socket) => { s.on('data', (d: Buffer) => s.write(d)); s.on('end', () => s.end()); };
      const ping = (port: number, host: string): Promise<string> => withTimeout(new Promise<string>((resolve) => {
        const c = impl.connect(port, host);
        const parts: Buffer[] = [];
        c.on('data', (d: Buffer) => parts.push(d));
        c.on('end', () => resolve(Buffer.concat(parts).toString()));
        c.on('error', (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`));
        c.once('connect', () => c.end(`ping ${host}`));
      }), T, `connect ${host}`);
      for (const ipv6Only of [true, false]) {
        const server = impl.createServer({}, echo);
        server.listen({ port: 0, host: '::', ipv6Only });
        await withTimeout(once(server, 'listening'), T, 'listening');
        const port = (server.address() as net.AddressInfo).port;
        try {
          assert.equal(await ping(port, '::1'), 'ping ::1');
          assert.equal(await ping(port, '127.0.0.1'), ipv6Only ? 'error:ECONNREFUSED' : 'ping 127.0.0.1', `ipv6Only ${ipv6Only}`);
        } finally { await closeServer(server); }
      }
    });

    // The refused connection's close may come before the server's second 'connection' is seen from outside the event
    // handlers: megapipe delivers one wake-up's completions in several rounds within one loop turn (the accepts, the
    // refusal's close, the client's EOF, its end and its close), so every client's 'close' is awaited from the start
    // (a listener attached after a waitFor on the server missed it under load). The test waits for that close first.
    it('maxConnections: connections beyond it are closed at once; \'drop\' names them; getConnections counts the open ones', async () => {
      const open: net.Socket[] = [];
      const server = impl.createServer({}, (s) => { open.push(s); s.resume(); });
      server.maxConnections = 2;
      const drops: net.DropArgument[] = [];
      server.on('drop', (d?: net.DropArgument) => drops.push(d!));
      const port = await listening(server);
      const clients = [0, 1, 2].map(() => impl.connect(port, '127.0.0.1'));
      const localPorts = clients.map(() => -1);
      clients.forEach((c, i) => { c.once('connect', () => { localPorts[i] = c.localPort!; }); c.resume(); });
      // the one accepted third is closed: which client that is depends on the order the connections arrived in
      const closed = clients.map((c, i) => once(c, 'close').then(() => i));
      try {
        const refused = await withTimeout(Promise.race(closed), T, 'the connection beyond maxConnections closed');
        // it was refused once two were open (their 'connection' came first)
        assert.equal(open.length, 2);
        assert.equal(clients.filter((c) => c.destroyed).length, 1, 'exactly one client closed');
        assert.equal(drops.length, 1);
        const d = drops[0]!;
        assert.deepEqual([d.localAddress, d.localPort, d.localFamily, d.remoteAddress, d.remotePort, d.remoteFamily], ['127.0.0.1', port, 'IPv4', '127.0.0.1', localPorts[refused], 'IPv4']);
        const n = await new Promise<number>((resolve) => server.getConnections((_, k) => resolve(k)));
        assert.equal(n, 2);
      } finally {
        for (const c of clients) c.destroy();
        await closeServer(server);
      }
    });

    // node 20 reads maxConnections = 0 as "no limit" (a falsy check), node 21 and later (nodejs/node#48276) as "refuse
    // all": the node:net run pins which this node does, and megapipe/net must do the same (it refused all on node 20)
    it('maxConnections = 0 means what it means to this node: no limit before node 21, refuse every connection from 21', async () => {
      const zeroRefuses = Number(process.versions.node.split('.')[0]) >= 21;
      let accepted = 0;
      const server = impl.createServer({}, (s) => { accepted++; s.end('hello'); });
      server.maxConnections = 0;
      let drops = 0;
      server.on('drop', () => { drops++; });
      const port = await listening(server);
      try {
        const c = impl.connect(port, '127.0.0.1');
        c.on('error', () => {});
        const body = await withTimeout(collect(c).catch(() => Buffer.alloc(0)), T, 'the client\'s end');
        assert.deepEqual([body.toString('latin1'), accepted, drops], zeroRefuses ? ['', 0, 1] : ['hello', 1, 0]);
        c.destroy();
      } finally { await closeServer(server); }
    });

    it('strings in every encoding arrive as node:net encodes them; bytesWritten counts bytes, not characters', async () => {
      // written one by one and corked together (writev), from the Latin-1/ASCII path and the encoded one
      const parts: [string, BufferEncoding | undefined][] = [
        ['plain ascii ', undefined], ['utf8 é€😀 ', 'utf8'], ['latin1 \u00e9\u00ff ', 'latin1'], ['binary \u00fe ', 'binary'],
        ['ascii ', 'ascii'], ['ucs2 é ', 'ucs2'], ['68657820', 'hex'], ['YjY0IA==', 'base64'], ['', undefined], ['utf-8 ü', 'utf-8'],
      ];
      const expected = Buffer.concat([...parts, ...parts].map(([t, e]) => Buffer.from(t, e)));
      let serverSocket: net.Socket | undefined;
      const server = impl.createServer({}, (s) => {
        serverSocket = s;
        for (const [t, e] of parts) s.write(t, e as BufferEncoding);
        s.cork();
        for (const [t, e] of parts) s.write(t, e as BufferEncoding);
        process.nextTick(() => { s.uncork(); s.end(); });
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      const body = await withTimeout(collect(c), T, 'the strings');
      assert.ok(body.equals(expected), `got ${body.toString('hex')}\nwant ${expected.toString('hex')}`);
      await withTimeout(once(c, 'close'), T, 'close');
      assert.equal(serverSocket!.bytesWritten, expected.length);
      await closeServer(server);
    });

    it('bytesWritten counts the bytes of writes still buffered (strings by their encoding) before they are sent', async () => {
      let counted: number[] = [];
      const server = impl.createServer({}, (s) => {
        s.cork();
        s.write('é€', 'utf8');
        s.write(Buffer.from('abc'));
        s.write('ff00', 'hex');
        counted = [s.bytesWritten];
        s.uncork();
        s.end(() => { counted.push(s.bytesWritten); });
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      const body = await withTimeout(collect(c), T, 'the bytes');
      assert.equal(body.length, 5 + 3 + 2);
      await waitFor(() => counted.length === 2, 'the end callback');
      assert.deepEqual(counted, [10, 10]);
      c.destroy();
      await closeServer(server);
    });

    it('bytesWritten counts writes made before the connection has a handle (its host name being resolved)', async () => {
      // the server on the address 'localhost' resolves to first, so that the client's lookup finds it
      const { address } = await lookup('localhost');
      const parts: Buffer[] = [];
      const server = impl.createServer({}, (s) => { s.on('data', (d: Buffer) => parts.push(d)); });
      const port = await listening(server, address);
      const c = impl.connect(port, 'localhost');
      c.on('error', () => {});
      try {
        const counted: number[] = [];
        c.write('hello');
        counted.push(c.bytesWritten);
        c.write('w\u00f6rld', 'utf8');
        counted.push(c.bytesWritten);
        c.cork(); c.write(Buffer.from('abc')); c.write('ff00', 'hex'); c.uncork();
        counted.push(c.bytesWritten);
        assert.equal(c.connecting, true, 'still resolving and connecting');
        await withTimeout(once(c, 'connect'), T, 'connect');
        await waitFor(() => parts.reduce((n, p) => n + p.length, 0) >= 16, 'the bytes at the server');
        counted.push(c.bytesWritten);
        assert.deepEqual(counted, [5, 11, 16, 16]);
        assert.ok(Buffer.concat(parts).equals(Buffer.concat([Buffer.from('hello'), Buffer.from('w\u00f6rld', 'utf8'), Buffer.from('abc'), Buffer.from([0xff, 0])])));
      } finally {
        c.destroy();
        await closeServer(server);
      }
    });

    it('destroyed while its host name is resolved: the pending write\'s callback, the next one\'s and end()\'s fail after \'close\'', async () => {
      const events: string[] = [];
      const c = impl.connect(1, 'localhost');
      record(c, ['error', 'close'], events);
      c.write('x', (e) => events.push(`write1:${(e as NodeJS.ErrnoException | null | undefined)?.code}`));
      c.write('yz', (e) => events.push(`write2:${(e as NodeJS.ErrnoException | null | undefined)?.code}`));
      c.end(((e?: NodeJS.ErrnoException | null) => events.push(`end:${e?.code}`)) as () => void);
      assert.equal(c.connecting, true);
      c.destroy();
      await waitFor(() => events.length === 4, 'close and the three callbacks');
      for (let i = 0; i < 10; i++) await immediate();
      assert.deepEqual(events, ['close:false', 'write1:ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'write2:ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'end:ERR_SOCKET_CLOSED_BEFORE_CONNECTION']);
      // the pending write's byte stays counted (node:net's _pendingData); the discarded buffered one does not
      assert.equal(c.bytesWritten, 1);
    });

    // to an IP address the connect starts at once (megapipe/net has a handle while connecting): writes made meanwhile
    // must still wait for the connection, or a refused connect would have reported them written (it did)
    it('connect refused: writes and end() made while connecting fail after \'error\' and \'close\', none reported written', async () => {
      const closed = impl.createServer({}, () => {});
      const port = await listening(closed);
      await closeServer(closed);
      const events: string[] = [];
      const c = impl.connect(port, '127.0.0.1');
      record(c, ['error', 'close'], events);
      c.write('hello', (e) => events.push(`write1:${(e as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'}`));
      c.write('world', (e) => events.push(`write2:${(e as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'}`));
      c.end(((e?: NodeJS.ErrnoException | null) => events.push(`end:${e?.code ?? 'ok'}`)) as () => void);
      await waitFor(() => events.length === 5, 'error, close and the three callbacks');
      for (let i = 0; i < 10; i++) await immediate();
      assert.deepEqual(events, ['error:ECONNREFUSED', 'close:true', 'write1:ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'write2:ECONNREFUSED', 'end:ECONNREFUSED']);
      assert.equal(c.bytesWritten, 5);
    });

    it('connect accepted: writes and end() made while connecting arrive in order once connected, then the FIN', async () => {
      // allowHalfOpen: the server answers after the client's FIN
      const server = impl.createServer({ allowHalfOpen: true }, (s) => { collect(s).then((b) => s.end(`got:${b.toString('latin1')}`), () => {}); });
      const port = await listening(server);
      try {
        const c = impl.connect(port, '127.0.0.1');
        const order: string[] = [];
        c.write('one ', () => order.push('write1'));
        c.write(Buffer.from('two '), () => order.push('write2'));
        c.end('three', () => order.push('end'));
        assert.equal(c.connecting, true);
        c.once('connect', () => order.push('connect'));
        const reply = await withTimeout(collect(c), T, 'the reply');
        assert.equal(reply.toString('latin1'), 'got:one two three');
        await withTimeout(once(c, 'close'), T, 'close');
        assert.deepEqual(order.filter((e) => e !== 'connect'), ['write1', 'write2', 'end']);
        assert.ok(order.includes('connect'));
        assert.equal(c.bytesWritten, 13);
      } finally { await closeServer(server); }
    });

    it('a destroyed socket emits no more \'data\' and no \'end\', though the peer\'s bytes and FIN follow', async () => {
      const events: string[] = [];
      const server = impl.createServer({}, (s) => {
        s.on('data', () => { events.push('data'); s.destroy(); });
        record(s, ['end', 'close'], events);
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      c.on('error', () => {});
      // the first bytes, more bytes and the FIN in quick succession: what follows the first read arrives while the
      // server's socket is being destroyed
      c.once('connect', () => { c.write('first'); setImmediate(() => c.end('more')); });
      await waitFor(() => events.some((e) => e.startsWith('close:')), 'server close');
      for (let i = 0; i < 10; i++) await immediate();
      assert.deepEqual(events, ['data', 'close:false']);
      c.destroy();
      await closeServer(server);
    });

    it('timeouts turned off and on again (as node:http does per request): no \'timeout\' while off, one once idle after', async () => {
      let timeouts = 0;
      let serverSocket: net.Socket | undefined;
      const server = impl.createServer({}, (s) => {
        serverSocket = s;
        s.resume();
        s.on('timeout', () => { timeouts++; });
        for (let i = 0; i < 5; i++) { s.setTimeout(20); s.setTimeout(0); }
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      await waitFor(() => serverSocket !== undefined, 'connection');
      // off: the timers armed before must not fire
      await sleep(120);
      assert.equal(timeouts, 0);
      assert.equal(serverSocket!.timeout, 0);
      // a long timeout then a short one: the short one counts
      serverSocket!.setTimeout(60_000);
      serverSocket!.setTimeout(30);
      await waitFor(() => timeouts === 1, 'the timeout');
      assert.equal(serverSocket!.timeout, 30);
      // after it, activity and idleness again: another 'timeout' (as node:net's refreshed timer)
      c.write('x');
      await waitFor(() => timeouts === 2, 'the second timeout');
      serverSocket!.setTimeout(0);
      c.destroy();
      await closeServer(server);
    });

    // Regression (found while adding the soak's node:http kind, by following node:http's close paths on megapipe/net;
    // the soak reaches it now: node-http destroys Connection: close connections): megapipe/net calls a write's callback
    // once its bytes are queued in the channel below the high-water mark, and destroy() dropped what was still queued —
    // bytes the callback had reported written. node:net calls it once the kernel has them, and destroy() closes the
    // descriptor: the kernel still sends them. (So node:http's server.close(), which destroys idle keep-alive
    // connections, cut the response a client was still receiving: the node:http test below.)
    it('bytes a write\'s callback reported written arrive though the socket is destroyed in that callback (with or without an error)', async () => {
      const rand = prng(41);
      for (const withError of [false, true]) {
        for (const size of [5, 40_000, 300_000]) {
          const data = randomBytes(rand, size);
          const server = impl.createServer({}, (s) => {
            s.on('error', () => {});
            s.resume();
            s.write(data, () => s.destroy(withError ? new Error('done') : undefined));
          });
          const port = await listening(server);
          const c = impl.connect(port, '127.0.0.1');
          const body = await withTimeout(collect(c), T, `${size} bytes`);
          assert.equal(body.length, size, `${size} bytes${withError ? ', destroyed with an error' : ''}: ${body.length} arrived`);
          assert.ok(body.equals(data), `${size} bytes: every byte`);
          await closeServer(server);
        }
      }
    });

    // (node:net leaves the bytes to the kernel, whose orphaned socket here dropped some of them — about 21 KiB of 3.9 MiB
    // reported written —: what arrives is only asserted to be the data's prefix, then the FIN)
    it('destroyed while its peer does not read: \'close\' at once, not when the peer reads; then the bytes follow, in order, and the FIN', async () => {
      const data = randomBytes(prng(43), 32 << 20);
      let reported = 0, closed = false;
      const server = impl.createServer({}, (s) => {
        s.on('close', () => { closed = true; });
        // writes of 64 KiB one after another, each once the previous one's callback came, until none comes for a
        // while (the peer's window and the buffers are full): then destroy
        let idle: NodeJS.Timeout | undefined;
        const next = (): void => {
          clearTimeout(idle);
          if (reported >= data.length) { s.destroy(); return; }
          idle = setTimeout(() => s.destroy(), 300);
          const piece = data.subarray(reported, reported + 65536);
          s.write(piece, (err) => { if (!err) { reported += piece.length; next(); } });
        };
        next();
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      c.pause();
      await waitFor(() => closed, 'the server socket\'s close, while its peer reads nothing');
      assert.ok(reported < data.length, 'the buffers filled up before the data ran out');
      c.resume();
      const body = await withTimeout(collect(c), T, 'the bytes reported written');
      assert.ok(body.length > 0 && body.equals(data.subarray(0, body.length)), `${body.length} bytes (${reported} reported written), the data's prefix`);
      await closeServer(server);
    });

    it('node:http\'s server.close() right after a response: the idle keep-alive connection is closed, the whole response arrives first', async () => {
      const rand = prng(42);
      for (const size of [40_000, 300_000]) {
        const body = randomBytes(rand, size);
        const server = http.createServer((req, res) => {
          res.on('finish', () => server.close());
          res.setHeader('Content-Length', size);
          res.end(body);
        });
        impl.attach(server, 0, '127.0.0.1');
        await withTimeout(once(server, 'listening'), T, 'listening');
        const c = impl.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
        c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        const got = await withTimeout(collect(c), T, 'the response');
        const head = got.indexOf('\r\n\r\n') + 4;
        assert.ok(head > 4, 'a response head');
        assert.equal(got.length - head, size, `${size} bytes of body: ${got.length - head} arrived`);
        assert.ok(got.subarray(head).equals(body), 'every byte of the body');
        if (server.listening) await withTimeout(once(server, 'close'), T, 'server close');
      }
    });

    it('cork/uncork: corked writes arrive together and in order; destroySoon sends them first', async () => {
      const server = impl.createServer({}, (s) => {
        s.cork();
        for (let i = 0; i < 100; i++) s.write(`${i},`);
        process.nextTick(() => { s.uncork(); s.destroySoon(); });
      });
      const port = await listening(server);
      const c = impl.connect(port, '127.0.0.1');
      const body = await withTimeout(collect(c), T, 'corked writes');
      assert.equal(body.toString(), Array.from({ length: 100 }, (_, i) => `${i},`).join(''));
      await closeServer(server);
    });
  });
}

// reusePort (node's from 22.12; node 20 ignores the option): megapipe/net sets SO_REUSEPORT, so two servers share the
// port and the kernel spreads connections over them; without it, the second bind fails.
describe('megapipe/net listen: reusePort', { skip: uringSkip }, () => {
  it('two servers with reusePort share a port and both accept; a third without it gets EADDRINUSE', async () => {
    const seen = [0, 0];
    const make = (i: number) => mnet.createServer((s) => { seen[i]!++; s.end(`server ${i}`); });
    const a = make(0), b = make(1);
    a.listen({ port: 0, host: '127.0.0.1', reusePort: true });
    await withTimeout(once(a, 'listening'), T, 'a listening');
    const port = (a.address() as net.AddressInfo).port;
    b.listen({ port, host: '127.0.0.1', reusePort: true });
    await withTimeout(once(b, 'listening'), T, 'b listening');
    const c = mnet.createServer(() => {});
    c.listen({ port, host: '127.0.0.1' });
    const [e] = await withTimeout(once(c, 'error'), T, 'EADDRINUSE') as [NodeJS.ErrnoException];
    assert.equal(e.code, 'EADDRINUSE');
    // connections from many source ports: the reuseport hash sends some to each (64 connections: both get one unless
    // the hash is degenerate, about 2^-63)
    for (let i = 0; i < 64; i++) {
      const s = net.connect(port, '127.0.0.1');
      const got = await withTimeout(collect(s), T, `connection ${i}`);
      assert.match(got.toString(), /^server [01]$/);
    }
    assert.equal(seen[0]! + seen[1]!, 64);
    assert.ok(seen[0]! > 0 && seen[1]! > 0, `both servers accepted: ${seen.join(', ')}`);
    await Promise.all([closeServer(a), closeServer(b)]);
  });
});
