// serve() with megapipe/net's serveServer: an unmodified node:http server built in every worker, fed that worker's
// connections (its listener member, its channel's lwsockets); graceful close.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { serve } from '../src/index.js';
import { runPool, uringSkip, withTimeout } from './helpers.js';

function post(port: number, body: Buffer): Promise<{ worker: number; bytes: number; lwsocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: false }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { s += d; });
      res.on('end', () => resolve(JSON.parse(s) as { worker: number; bytes: number; lwsocket: boolean }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('serve() with serveServer: node:http on every worker', { skip: uringSkip }, () => {
  it('two workers answer through lwsockets, every request whole; close() resolves with their counters', async () => {
    const server = await serve({ module: new URL('./fixtures/net-serve-worker.js', import.meta.url), workers: 2, host: '127.0.0.1', port: 0 });
    try {
      const seen = new Set<number>();
      let requests = 0;
      await withTimeout(runPool(400, 20, async (i) => {
        const body = Buffer.alloc(i * 97 % 20000, i % 256);
        const r = await post(server.port, body);
        assert.equal(r.bytes, body.length);
        assert.equal(r.lwsocket, true);
        seen.add(r.worker);
        requests++;
      }), 60_000, 'requests');
      assert.equal(requests, 400);
      const stats = await server.stats();
      assert.equal(stats.reduce((a, s) => a + s.accepted, 0), 400);
      assert.ok(seen.size >= 1);
    } finally {
      const final = await withTimeout(server.close(2000), 30_000, 'close');
      assert.equal(final.length, 2);
    }
  });
});
