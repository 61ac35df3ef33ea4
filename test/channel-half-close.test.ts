// Half-close: the client shuts down its write side; the server sees EOF (a read event with result 0), still writes its
// reply after it — large enough to need many sends — and the client receives all of it before the server's FIN.
// And the other way round: the server ends its write side with end() and keeps reading.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { BACKENDS, connectSocket, openListener, prng, randomBytes, readAll, skipFor, waitFor, closeListenerAndChannel } from './helpers.js';
import { createChannel } from '../src/index.js';

const REQUEST = 300_000;
const REPLY = 3 * 1024 * 1024;

for (const backend of BACKENDS) {
  describe(`half-close (${backend})`, { skip: skipFor(backend) }, () => {
    for (const later of [false, true]) {
    it(`the server replies after EOF${later ? ' (from a timer, a turn later)' : ''} and the client gets the whole reply`, async () => {
      const rand = prng(7);
      const request = randomBytes(rand, REQUEST);
      const reply = randomBytes(rand, REPLY);
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      const log: string[] = [];
      const received = createHash('sha256');
      let receivedBytes = 0, eofAt = -1, gone = false, listenerGone = false;
      const errors: string[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; else if (ev.type === 'error' || ev.type === 'listener-error') errors.push(`listener ${ev.type} ${ev.code}`); return; }
        log.push(ev.type === 'read' && ev.result === 0 ? 'eof' : ev.type);
        switch (ev.type) {
          case 'accept': ch.read(ev.handle); break;
          case 'read':
            if (ev.result > 0) { received.update(ev.buffer.subarray(ev.offset, ev.offset + ev.result)); receivedBytes += ev.result; break; }
            eofAt = receivedBytes;
            // the peer's side is closed; ours is not: reply in pieces, then close (queued bytes go first)
            if (later) { const h = ev.handle; setTimeout(() => respond(h), 20); } else respond(ev.handle);
            break;
          case 'error': errors.push(ev.code); break;
          case 'disconnect': gone = true; break;
          default: break;
        }
      });
      const respond = (h: number) => {
        for (let off = 0; off < REPLY; off += 100_000) ch.write(h, reply, off, Math.min(100_000, REPLY - off));
        ch.disconnect(h);
      };
      ch.accept(lh);
      try {
        const s = await connectSocket(listener.port);
        const all = readAll(s, 60000);
        s.end(request);
        const got = await all;
        assert.equal(got.byteLength, REPLY);
        assert.ok(got.equals(reply), 'the reply arrives intact and in order');
        await waitFor(() => gone, 'the server connection to go');
        assert.equal(eofAt, REQUEST, 'EOF comes after every request byte');
        assert.equal(received.digest('hex'), createHash('sha256').update(request).digest('hex'));
        assert.equal(log.filter((t) => t === 'eof').length, 1, 'one EOF event');
        assert.equal(log.at(-1), 'disconnect', 'disconnect is the final event');
        assert.deepEqual(errors, []);
        s.destroy();
      } finally {
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });
    }

    it('end(): the server sends its queued bytes, then EOF; it still reads what the client sends after', async () => {
      const rand = prng(9);
      const reply = randomBytes(rand, 1024 * 1024), late = randomBytes(rand, 200_000);
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      const received = createHash('sha256');
      let receivedBytes = 0, eof = false, gone = false, listenerGone = false, afterEnd = '';
      const errors: string[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        switch (ev.type) {
          case 'accept':
            ch.read(ev.handle);
            for (let off = 0; off < reply.byteLength; off += 64 * 1024) ch.write(ev.handle, reply, off, 64 * 1024);
            ch.end(ev.handle);
            ch.end(ev.handle);   // idempotent
            try { ch.write(ev.handle, reply, 0, 1); afterEnd = 'write after end() succeeded'; } catch (e) { afterEnd = (e as { code?: string }).code ?? String(e); }
            break;
          case 'read':
            if (ev.result > 0) { received.update(ev.buffer.subarray(ev.offset, ev.offset + ev.result)); receivedBytes += ev.result; }
            else { eof = true; ch.disconnect(ev.handle); }
            break;
          case 'error': errors.push(ev.code); break;
          case 'disconnect': gone = true; break;
          default: break;
        }
      });
      ch.accept(lh);
      try {
        const s = net.connect({ port: listener.port, host: '127.0.0.1', allowHalfOpen: true });   // stays writable after EOF
        const got = await readAll(s, 60000);   // resolves at the server's FIN
        assert.ok(got.equals(reply), 'every queued byte arrives before EOF');
        assert.equal(afterEnd, 'MP_ERR_CLOSED');
        assert.equal(gone, false, 'the connection is still open after end()');
        s.end(late);   // the server's read side is still open
        await waitFor(() => gone, 'the server connection to go');
        assert.equal(eof, true);
        assert.equal(receivedBytes, late.byteLength);
        assert.equal(received.digest('hex'), createHash('sha256').update(late).digest('hex'));
        assert.deepEqual(errors, []);
        s.destroy();
      } finally {
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });
  });
}
