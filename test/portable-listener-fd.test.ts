// A native listener (listen(), the addon present) served by portable channels — serve() on a machine whose io_uring
// is refused (kernel.io_uring_disabled, a container's seccomp policy): each channel's node:net server listens on its
// own duplicate of the member's descriptor, because node's server closes the descriptor it listens on. Before, every
// channel listened on the member's fd itself: the first channel to close closed it for all (the others stopped
// accepting), and each later close — and the listener's own — closed that number again, whatever it had become.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connectSocket, readAll, waitFor } from './helpers.js';
import { createChannel, listen, type Channel } from '../src/index.js';
import { native } from '../src/native.js';
import { acceptQueueLength } from '../src/sockets.js';

const noAddon = native ? false : 'needs the addon: a native listener (listen() binds through it)';

/** The fds of this process that are the socket `link` (a readlink of /proc/self/fd/N: "socket:[inode]"). */
function fdsOf(link: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    try { if (readlinkSync(`/proc/self/fd/${name}`) === link) out.push(Number(name)); } catch { /* gone meanwhile */ }
  }
  return out;
}

/** An echo of one message on a portable channel that accepts from `listener`. */
function echoOn(ch: Channel): { accepted: () => number } {
  let accepted = 0;
  ch.onEvent((ev) => {
    if (ev.type === 'accept') { accepted++; ch.read(ev.handle); }
    else if (ev.type === 'read') {
      if (ev.result > 0) ch.write(ev.handle, ev.buffer, ev.offset, ev.result);
      else ch.disconnect(ev.handle);
    }
  });
  return { accepted: () => accepted };
}

async function echoOnce(port: number, text: string): Promise<void> {
  const s = await connectSocket(port);
  s.end(text);
  assert.equal((await readAll(s)).toString(), text);
}

describe('a native listener on portable channels', { skip: noAddon }, () => {
  it('closing one channel leaves the member open for the others; closing all and the listener leaves no descriptor of it', async () => {
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const fd = listener.fds[0]!;
    const link = readlinkSync(`/proc/self/fd/${fd}`);
    assert.match(link, /^socket:\[\d+\]$/);
    const a = createChannel({ backend: 'portable' }), b = createChannel({ backend: 'portable' });
    try {
      const ea = echoOn(a), eb = echoOn(b);
      a.accept(a.register(listener));
      const lb = b.register(listener);
      assert.equal(fdsOf(link).length, 3, 'the member and one duplicate per channel');
      a.close();
      await waitFor(() => fdsOf(link).length === 2, 'channel a to close its own duplicate');
      assert.equal(readlinkSync(`/proc/self/fd/${fd}`), link, 'the member fd is still the listening socket');
      b.accept(lb);
      for (let i = 0; i < 3; i++) await echoOnce(listener.port, `after a closed, ${i}`);
      assert.equal(eb.accepted(), 3, 'channel b accepts from the member');
      assert.equal(ea.accepted(), 0);
      b.close();
      await waitFor(() => fdsOf(link).length === 1, 'channel b to close its own duplicate');
      listener.close();
      assert.deepEqual(fdsOf(link), [], 'no descriptor of the listening socket is left');
    } finally {
      a.close(); b.close(); listener.close();
    }
  });

  it('acceptQueued takes from the channel\'s own duplicate, not from a number the listener closed and another socket got', async () => {
    const first = listen({ host: '127.0.0.1', port: 0 });
    const ch = createChannel({ backend: 'portable' });
    let other: ReturnType<typeof listen> | undefined;
    const spare: ReturnType<typeof listen>[] = [];
    const clients: import('node:net').Socket[] = [];
    try {
      echoOn(ch);
      const h = ch.register(first);
      const number = first.fds[0]!;
      first.close();   // the channel's registration keeps the socket (its duplicate); the number is free again
      // new sockets take the lowest free number: the closed member's, once any lower one freed meanwhile is taken
      for (let i = 0; i < 32 && other === undefined; i++) {
        const l = listen({ host: '127.0.0.1', port: 0 });
        if (l.fds[0] === number) other = l; else spare.push(l);
      }
      assert.ok(other !== undefined, 'a listening socket on the closed member\'s number');
      clients.push(await connectSocket(other.port));
      await waitFor(() => acceptQueueLength(other!.fds[0]!) === 1, 'the connection to wait in the other listener\'s queue');
      assert.deepEqual(ch.acceptQueued(h), [], 'nothing queued on the registered listener');
      assert.equal(acceptQueueLength(other.fds[0]!), 1, 'the other listener\'s connection is still its own');
    } finally {
      for (const s of clients) s.destroy();
      ch.close(); first.close(); other?.close();
      for (const l of spare) l.close();
    }
  });

  it('acceptQueued with no handle free closes the connection it accepted (as the io_uring channel does)', () => {
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const ch = createChannel({ backend: 'portable', limits: { maxHandles: 2 } });   // the listener and one connection
    const sockets = (): number => readdirSync('/proc/self/fd').filter((n) => { try { return readlinkSync(`/proc/self/fd/${n}`).startsWith('socket:'); } catch { return false; } }).length;
    try {
      const h = ch.register(listener);
      // two connections queued while this thread is blocked (node's server cannot take them first)
      const c = spawnSync(process.execPath, ['-e', `let n = 0; for (let i = 0; i < 2; i++) require('node:net').connect(${listener.port}, '127.0.0.1', function () { if (++n === 2) process.exit(0); });`], { timeout: 10_000 });
      assert.equal(c.status, 0, String(c.stderr));
      const before = sockets();
      assert.equal(ch.acceptQueued(h).length, 1, 'one handle was free');
      assert.equal(sockets(), before + 1, 'the connection without a handle is closed, not left open');
    } finally {
      ch.close(); listener.close();
    }
  });
});
