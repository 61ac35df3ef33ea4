// A native listener (listen(), the addon present) served by portable channels — serve() on a machine whose io_uring
// is refused (kernel.io_uring_disabled, a container's seccomp policy): each channel's node:net server listens on its
// own duplicate of the member's descriptor, because node's server closes the descriptor it listens on. Before, every
// channel listened on the member's fd itself: the first channel to close closed it for all (the others stopped
// accepting), and each later close — and the listener's own — closed that number again, whatever it had become.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { connectSocket, readAll, waitFor } from './helpers.js';
import { createChannel, listen, type Channel } from '../src/index.js';
import { native } from '../src/native.js';

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
});
