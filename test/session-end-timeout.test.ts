// conn.end() towards a peer that stops reading: the queued bytes cannot drain, so after `endTimeoutMs` without progress the connection
// is destroyed and its session's close() gets ETIMEDOUT — on serveChannel (both backends) and serveNet. A peer that
// reads, even slowly (taking several endTimeoutMs in all), gets every byte and a clean close.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { BACKENDS, connectSocket, openListener, prng, randomBytes, readAll, skipFor, waitFor } from './helpers.js';
import { createChannel, serveChannel, serveNet, type SessionFactory } from '../src/index.js';

const REPLY = randomBytes(prng(3), 32 * 1024 * 1024);   // far more than loopback socket buffers hold

interface Outcome { closed: boolean; code: string | undefined }

/** Answers the first byte with REPLY, then ends. */
function factory(outcomes: Outcome[]): SessionFactory {
  return (conn) => {
    const o: Outcome = { closed: false, code: undefined };
    outcomes.push(o);
    let answered = false;
    return {
      data() {
        if (answered) return;
        answered = true;
        for (let off = 0; off < REPLY.length; off += 1 << 20) conn.write(REPLY, off, 1 << 20);
        conn.end();
      },
      close(err) { o.closed = true; o.code = err?.code; },
    };
  };
}

async function stalledPeer(port: number): Promise<net.Socket> {
  const s = await connectSocket(port);
  s.pause();   // never reads: the window closes
  s.on('error', () => {});
  s.write('x');
  return s;
}

/** Reads everything, slowly: a 100 ms pause after every 2 MB, so the whole reply takes several endTimeoutMs. */
async function readingPeer(port: number): Promise<Buffer> {
  const s = await connectSocket(port);
  const all = readAll(s, 60000);
  let since = 0;
  s.on('data', (b: Buffer) => {
    since += b.length;
    if (since < 2 * 1024 * 1024) return;
    since = 0;
    s.pause();
    setTimeout(() => s.resume(), 100);
  });
  s.write('x');
  return all;
}

/** A stalled peer is destroyed with ETIMEDOUT; then a slow reading peer gets every byte and a clean close. */
async function stalledThenReading(port: number, outcomes: Outcome[]): Promise<void> {
  const stalled = await stalledPeer(port);
  await waitFor(() => outcomes[0]?.closed === true, 'the stalled connection to be destroyed');
  assert.equal(outcomes[0]!.code, 'ETIMEDOUT');
  stalled.destroy();
  const got = await readingPeer(port);
  assert.ok(got.equals(REPLY), 'the reading peer gets every byte');
  await waitFor(() => outcomes[1]?.closed === true, 'the reading connection to close');
  assert.equal(outcomes[1]!.code, undefined, 'closed without error');
}

for (const backend of BACKENDS) {
  describe(`serveChannel: end() timeout (${backend})`, { skip: skipFor(backend) }, () => {
    it('destroys an ended connection whose peer stops reading (ETIMEDOUT); a reading peer gets everything', async () => {
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const outcomes: Outcome[] = [];
      const server = serveChannel(ch, listener, factory(outcomes), { endTimeoutMs: 300 });
      try {
        await stalledThenReading(listener.port, outcomes);
      } finally {
        await server.close(1000);
        listener.close();
        ch.close();
      }
    });
  });
}

describe('serveNet: end() timeout', () => {
  it('destroys an ended connection whose peer stops reading (ETIMEDOUT); a reading peer gets everything', async () => {
    const outcomes: Outcome[] = [];
    const server = await serveNet(factory(outcomes), { endTimeoutMs: 300 });
    try {
      await stalledThenReading(server.port, outcomes);
    } finally {
      await server.close(1000);
    }
  });

  it('names a bad endTimeoutMs', async () => {
    await assert.rejects(serveNet(factory([]), { endTimeoutMs: -1 }), /endTimeoutMs must be a non-negative integer/);
    await assert.rejects(serveNet(factory([]), { endTimeoutMs: 1.5 }), /endTimeoutMs/);
  });
});
