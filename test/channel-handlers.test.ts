// Handlers compose: onEvent adds a handler beside those already set (a logger added next to serveChannel's handler
// leaves the server working), offEvent removes one, onEvent(null) removes all and events wait for dispatch().
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { createChannel, serveChannel, type MpEvent } from '../src/index.js';
import { BACKENDS, openListener, skipFor, waitFor } from './helpers.js';

async function roundTrip(port: number, text: string): Promise<string> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.end(text);
  let got = '';
  c.setEncoding('utf8');
  c.on('data', (d: string) => { got += d; });
  await once(c, 'close');
  return got;
}

for (const backend of BACKENDS) {
  describe(`event handlers add up (${backend})`, { skip: skipFor(backend) }, () => {
    it('a logger added after serveChannel sees every event and the server keeps serving', async () => {
      const ch = createChannel({ backend });
      const l = await openListener(backend);
      try {
        const srv = serveChannel(ch, l, (conn) => ({ data(buf, off, len) { conn.write(buf, off, len); } }));
        const seen: string[] = [];
        const logger = (ev: MpEvent): void => { seen.push(ev.type); };
        ch.onEvent(logger);
        ch.onEvent(logger);   // the same handler twice: added once
        assert.equal(await roundTrip(l.port, 'hello'), 'hello');
        await waitFor(() => seen.includes('disconnect'), 'the logger sees the disconnect');
        assert.equal(seen.filter((t) => t === 'accept').length, 1, 'once per event, not twice');
        assert.ok(seen.includes('read'));
        ch.offEvent(logger);
        const before = seen.length;
        assert.equal(await roundTrip(l.port, 'again'), 'again');
        assert.equal(seen.length, before, 'offEvent removed the logger only');
        await srv.close(1000);
      } finally { ch.close(); l.close(); }
    });

    it('handlers run in the order added; onEvent(null) removes them all and events wait for dispatch()', async () => {
      const ch = createChannel({ backend });
      const l = await openListener(backend);
      try {
        const lh = ch.register(l, 'L');
        const order: string[] = [];
        ch.onEvent((ev) => { if (ev.type === 'accept') order.push('first'); });
        ch.onEvent((ev) => { if (ev.type === 'accept') { order.push('second'); ch.onEvent(null); } });
        ch.accept(lh);
        const c1 = net.connect(l.port, '127.0.0.1');
        await waitFor(() => order.length === 2, 'both handlers saw the accept');
        assert.deepEqual(order, ['first', 'second']);
        const c2 = net.connect(l.port, '127.0.0.1');
        const ev = await ch.dispatch(5000);
        assert.equal(ev?.type, 'accept', 'with no handler left, the next accept waits for dispatch()');
        c1.destroy(); c2.destroy();
      } finally { ch.close(); l.close(); }
    });

    it('offEvent of a handler never added does nothing; a non-function is a TypeError naming handler', () => {
      const ch = createChannel({ backend });
      try {
        ch.offEvent(() => {});
        assert.throws(() => ch.offEvent('x' as never), (e: Error) => e instanceof TypeError && /handler/.test(e.message));
        assert.throws(() => ch.onEvent(5 as never), (e: Error) => e instanceof TypeError && /handler/.test(e.message));
      } finally { ch.close(); }
    });
  });
}
