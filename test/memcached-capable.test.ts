// libmemcached's memccapable (Debian: libmemcached-tools) runs its ASCII protocol conformance suite against us, on
// each transport (io_uring channels under serve(), then node:net).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ServerHandle } from '../apps/memcached/server.js';
import { MEMCCAPABLE_BIN } from './memcached-testkit.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

for (const transport of TRANSPORTS) describe(`memccapable -a (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  before(async () => { srv = await startOn(transport, { port: 0, memoryMb: 16 }); });
  after(async () => { await srv?.close(); });

  it('reports all ASCII tests passed', async (t) => {
    if (!existsSync(MEMCCAPABLE_BIN)) {
      t.skip(`${MEMCCAPABLE_BIN} not installed (apt-get install libmemcached-tools)`);
      return;
    }
    const out = await new Promise<string>((resolve) => {
      execFile(MEMCCAPABLE_BIN, ['-a', '-h', '127.0.0.1', '-p', String(srv.port), '-t', '10'], { timeout: 120_000 },
        (err, stdout, stderr) => resolve(`${stdout}${stderr}${err ? `\n(exit: ${err.code ?? err.message})` : ''}`));
    });
    assert.doesNotMatch(out, /\[fail\]/, out);
    assert.match(out, /^All tests passed$/m, out);
    const passed = out.match(/\[pass\]/g)?.length ?? 0;
    assert.ok(passed >= 27, `${passed} tests passed:\n${out}`);
  });
});
