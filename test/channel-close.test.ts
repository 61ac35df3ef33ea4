// close(): the channel's end is the kernel's end too. After `ch.close()` every lwsocket is closed (its peer reads EOF, or
// a reset when it had unread bytes), the accept the channel armed on its listener member is gone (the member takes no
// more connections for it; closed by its owner, the port refuses), nothing is left in the kernel (no request can touch
// the channel's memory or a no-copy write's buffer), and a thread can create and close channels without end: no ring,
// registered-ring slot (16 per thread), descriptor or memory is left behind — also when creating one fails half-way.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BACKENDS, connectSocket, fdCount, openListener, skipFor, uringSkip, waitFor, withTimeout } from './helpers.js';
import { createChannel, type Channel, type Listener } from '../src/index.js';
import { native } from '../src/native.js';

/** Every option the addon requires (it keeps no defaults), small, with `over` on top. */
const nativeOptions = (over: Record<string, number>): Record<string, number> => ({
  sqEntries: 64, cqEntries: 128, files: 64, recvBuffers: 64, recvBufferSize: 4096, sendArenaBytes: 1 << 20,
  requestRows: 64, eventRows: 64, addressBytes: 4096, refSlots: 64, ...over,
});

/** Resolves with how the peer saw its connection end: 'eof', or the error code of a reset. Rejects after `ms`. */
function peerEnd(s: net.Socket, ms = 10000): Promise<string> {
  return withTimeout(new Promise((resolve) => {
    if (s.destroyed || s.readableEnded) { resolve('closed already'); return; }
    s.on('data', () => { /* drain */ });
    s.once('end', () => resolve('eof'));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  }), ms, 'the peer to see its connection end after close()');
}

interface Server { ch: Channel; listener: Listener; lh: number; conns: number[] }

async function server(backend: 'uring' | 'portable', onAccept?: (ch: Channel, h: number, i: number) => void): Promise<Server> {
  const ch = createChannel({ backend });
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'L');
  const conns: number[] = [];
  ch.onEvent((ev) => {
    if (ev.type === 'accept') { conns.push(ev.handle); onAccept?.(ch, ev.handle, conns.length - 1); }
  });
  ch.accept(lh);
  return { ch, listener, lh, conns };
}

for (const backend of BACKENDS) {
  describe(`close() (${backend})`, { skip: skipFor(backend) }, () => {
    it('every connection is closed: idle, with unread bytes, with bytes queued, with a no-copy write in flight', async () => {
      const big = Buffer.alloc(8 << 20, 0x61);   // far more than the socket buffers: sends stay in flight
      const srv = await server(backend, (ch, h, i) => {
        if (i === 1) ch.read(h);                  // reads (and pauses at once): the peer's bytes stay unread
        if (i === 1) ch.pause(h);
        if (i === 2) ch.write(h, big);            // queued in the channel, the peer never reads
        if (i === 3) ch.writeNoCopy(h, big);      // sent from `big` itself, the peer never reads
      });
      const peers: net.Socket[] = [];
      try {
        for (let i = 0; i < 4; i++) {
          const s = await connectSocket(srv.listener.port);
          peers.push(s);
          await waitFor(() => srv.conns.length === i + 1, `connection ${i} accepted`);
        }
        peers[1]!.write(Buffer.alloc(100_000, 1));
        peers[2]!.pause(); peers[3]!.pause();   // zero window: the server's sends cannot finish
        await waitFor(() => srv.ch.stats().bytesWritten > 0 || backend === 'portable', 'sends to start');
        const ends = peers.map((s) => peerEnd(s));
        srv.ch.close();
        for (const s of [peers[2]!, peers[3]!]) s.resume();
        const seen = await Promise.all(ends);
        for (const [i, how] of seen.entries()) assert.ok(['eof', 'ECONNRESET', 'EPIPE'].includes(how), `peer ${i} ended with ${how}`);
        if (backend === 'uring') assert.equal(srv.ch.stats().inKernel, 0, 'no request left in the kernel after close()');
      } finally {
        for (const s of peers) s.destroy();
        srv.listener.close();
        srv.ch.close();
      }
    });

    it('close() inside an event handler: no further event, the connection is closed', async () => {
      const after: string[] = [];
      let closed = false;
      const srv = await server(backend);
      srv.ch.onEvent((ev) => {
        if (closed) { after.push(ev.type); return; }
        if (ev.type === 'accept') { srv.ch.read(ev.handle); return; }
        if (ev.type === 'read' && ev.result > 0) {
          srv.ch.write(ev.handle, ev.buffer, ev.offset, ev.result);
          closed = true;
          srv.ch.close();
        }
      });
      const s = await connectSocket(srv.listener.port);
      try {
        const end = peerEnd(s);
        s.write('x'.repeat(10_000));
        assert.ok(['eof', 'ECONNRESET'].includes(await end));
        assert.deepEqual(after, [], 'events after close()');
        srv.ch.onEvent(null);
        assert.equal(await srv.ch.dispatch(0), null, 'a closed channel dispatches nothing');
      } finally { s.destroy(); srv.listener.close(); }
    });
  });
}

describe('close() and the listener (uring)', { skip: uringSkip }, () => {
  it("the member's armed accept ends with the channel; closed by its owner, the port refuses", async () => {
    const srv = await server('uring', (ch, h) => ch.read(h));
    const first = await connectSocket(srv.listener.port);
    await waitFor(() => srv.conns.length === 1, 'the first connection');
    srv.ch.close();
    // the kernel completes this handshake (the socket still listens), but no channel takes it: it waits in the queue
    const second = await connectSocket(srv.listener.port);
    const fd = native!.acceptNow(srv.listener.fds[0]!);
    try {
      assert.ok(fd >= 0, `the connection waited in the accept queue (acceptNow: ${fd}), it was not taken by a dead ring`);
    } finally {
      if (fd >= 0) native!.closeFd(fd);
      first.destroy(); second.destroy();
    }
    srv.listener.close();
    await assert.rejects(connectSocket(srv.listener.port), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED', 'the closed listener refuses');
  });
});

const here = fileURLToPath(new URL('.', import.meta.url));

/** Runs a fixture in a child (bounded in time): resolves with its exit code and output. */
function runChild(args: string[], ms = 120_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { out += String(d); });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('many channels on one thread (uring)', { skip: uringSkip }, () => {
  it('1,000 channels created and closed (each with a listener armed, some with connections and sends in flight): no ring, descriptor or memory left', async () => {
    const r = await runChild(['--expose-gc', 'fixtures/channel-churn.js', '1000']);
    assert.equal(r.code, 0, r.out);
    const line = r.out.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, r.out);
    const res = JSON.parse(line!) as { fdsBefore: number; fdsAfter: number; rssGrowthMiB: number; registeredRing: boolean; inKernel: number; bytesVerified: number };
    assert.equal(res.fdsAfter, res.fdsBefore, 'descriptors after = before');
    assert.equal(res.registeredRing, true, 'the last channel still got a registered ring fd (slots are given back)');
    assert.equal(res.inKernel, 0);
    assert.ok(res.bytesVerified > 0, 'the connections of the churn carried verified bytes');
    assert.ok(res.rssGrowthMiB < 64, `RSS grew by ${res.rssGrowthMiB} MiB over 1,000 channels`);
  });

  it('a channel that fails half-way (the file table refused) releases what it set up', () => {
    const before = fdCount();
    for (let i = 0; i < 100; i++) {
      // a direct-descriptor table beyond RLIMIT_NOFILE: the ring and its registered fd exist when the table is refused
      assert.throws(() => native!.channelCreate(nativeOptions({ files: 1 << 20 }), () => {}, {}), (e: NodeJS.ErrnoException) => /file table/.test(e.message));
    }
    assert.equal(fdCount(), before, 'descriptors after = before');
    const ch = createChannel({ backend: 'uring', limits: { files: 64, recvBuffers: 64, sendArenaBytes: 1 << 20 } });
    try {
      assert.equal(ch.features.registeredRing, true, 'registered-ring slots were given back by the failed creations');
    } finally { ch.close(); }
  });

  it("the addon checks each option's range before using it", () => {
    for (const [name, value] of [['recvBuffers', 2 ** 31 + 1], ['recvBuffers', 0], ['sqEntries', 2 ** 40], ['requestRows', -1], ['recvBufferSize', 1.5]] as const) {
      assert.throws(() => native!.channelCreate(nativeOptions({ [name]: value }), () => {}, {}), (e: NodeJS.ErrnoException) => e instanceof RangeError && e.code === 'MP_ERR_OUT_OF_RANGE' && e.message.includes(name), `${name}: ${value}`);
    }
  });

  it('the addon keeps no defaults of its own: every option is required (limits.ts owns the defaults)', () => {
    for (const name of Object.keys(nativeOptions({}))) {
      const opts = nativeOptions({});
      delete opts[name];
      assert.throws(() => native!.channelCreate(opts, () => {}, {}), (e: NodeJS.ErrnoException) => e instanceof TypeError && e.code === 'MP_ERR_INVALID_ARG' && e.message.includes(name), `without ${name}`);
    }
    const c = native!.channelCreate(nativeOptions({}), () => {}, {});   // and the full set is accepted
    native!.channelClose(c.channel);
  });
});
