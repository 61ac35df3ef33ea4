// Regression test named after a defect the soak found (bench/soak.ts, megapipe-http's stderr in the abort-response
// and reset scenarios): a client that goes away in the middle of a static file's response is an ordinary event, not
// a handler error. sendPreparedFile (apps/http/response.ts) means to stay quiet then ("the connection went away
// meanwhile: nothing to report"), but on io_uring the file's promise rejects (ECONNRESET from the splice, or
// MP_ERR_CLOSED when the queue is dropped) before the session hears of the close, so `ex.aborted` is still false:
// the error is rethrown, reaches onError, and the default onError prints a stack trace to stderr for every such
// client. (Fixed: a sendFile error that says the connection went away — ECONNRESET, EPIPE, MP_ERR_CLOSED… — is not
// reported either.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { serveStatic } from '../apps/http/static.js';
import { delay, SHIPPED_TRANSPORTS, skipTransport, startApp } from './http-helpers.test.js';
import { prng, randomBytes, waitFor } from './helpers.js';

const SIZE = 8 << 20;
let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-abort-'));
  fs.writeFileSync(path.join(root, 'big.bin'), randomBytes(prng(3), SIZE));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** GET /big.bin, read `readBytes` of the response, then leave: `how` is a reset or a plain close. */
async function leaveMidResponse(port: number, readBytes: number, how: 'reset' | 'close'): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  let got = 0;
  await new Promise<void>((resolve) => s.on('data', (d: Buffer) => { got += d.length; if (got >= readBytes) { s.pause(); resolve(); } }));
  if (how === 'reset') s.resetAndDestroy(); else s.destroy();
}

for (const transport of SHIPPED_TRANSPORTS) describe(`megapipe-http over ${transport}: a client leaving mid-file`, { skip: skipTransport(transport) }, () => {
  for (const how of ['reset', 'close'] as const) {
    it(`(${how}) is not a handler error`, async () => {
      const errors: string[] = [];
      const srv = await startApp({ handler: serveStatic(root), onError: (e) => errors.push(String(e)) }, transport);
      try {
        for (let i = 0; i < 10; i++) {
          await leaveMidResponse(srv.port, 100_000 + i * 300_000, how);
          await waitFor(() => srv.app.connections === 0, 'the server to close the connection');
        }
        await delay(100);   // a rejection settles in a later turn
        assert.deepEqual(errors, []);
      } finally { await srv.close(); }
    });
  }
});
