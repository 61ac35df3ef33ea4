// More clients people run, each with its own API against megapipe-memcached (text protocol): npm `memcache-client`
// (Walmart's, promise API), and Python's `pymemcache` (Debian's python3-pymemcache 3.5; it has no meta commands).
// The Python client is skipped, with the reason, when it is not installed (.ci/run installs it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { MemcacheClient, type MultiRetrievalResponse } from 'memcache-client';
import type { ServerHandle } from '../apps/memcached/server.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

const PYTHON = '/usr/bin/python3';
const pymemcacheMissing = (() => {
  const r = spawnSync(PYTHON, ['-c', 'import pymemcache'], { encoding: 'utf8' });
  return r.status === 0 ? false : `pymemcache not installed (apt-get install python3-pymemcache): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
})();

for (const transport of TRANSPORTS) describe(`npm memcache-client (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  let mc: MemcacheClient;
  before(async () => {
    srv = await startOn(transport, { port: 0, memoryMb: 64 }); // 500 values over many slab classes: no page moves
    mc = new MemcacheClient({ server: `127.0.0.1:${srv.port}` });
  });
  after(async () => { mc?.shutdown(); await srv?.close(); });

  it('set/get/multi-get/delete/add/replace/append/prepend/incr/decr/touch/gets/cas/version', async () => {
    assert.deepEqual(await mc.set('k1', 'hello'), ['STORED']);
    assert.equal((await mc.get<string>('k1'))?.value, 'hello');
    await mc.set('k2', 'world');
    const multi = await mc.get<MultiRetrievalResponse<string>>(['k1', 'k2', 'nosuch']);
    assert.equal(multi.k1?.value, 'hello');
    assert.equal(multi.k2?.value, 'world');
    assert.equal(multi.nosuch, undefined);
    assert.deepEqual(await mc.delete('k2'), ['DELETED']);
    assert.equal(await mc.get('k2'), undefined);
    assert.deepEqual(await mc.add('k1', 'x').catch((e: Error) => e.message), 'NOT_STORED');
    assert.deepEqual(await mc.replace('k1', 'mid'), ['STORED']);
    assert.deepEqual(await mc.append('k1', '>'), ['STORED']);
    assert.deepEqual(await mc.prepend('k1', '<'), ['STORED']);
    assert.equal((await mc.get<string>('k1'))?.value, '<mid>');
    await mc.set('n', '10');
    assert.deepEqual(await mc.incr('n', 5), '15');
    assert.deepEqual(await mc.decr('n', 20), '0');
    assert.deepEqual(await mc.touch('n', 100), ['TOUCHED']);
    const g = await mc.gets<string>('k1');
    assert.ok(g && g.casUniq !== undefined);
    assert.deepEqual(await mc.cas('k1', 'swapped', { casUniq: g!.casUniq! }), ['STORED']);
    assert.equal(await mc.cas('k1', 'again', { casUniq: g!.casUniq! }).catch((e: Error) => e.message), 'EXISTS');
    assert.equal((await mc.get<string>('k1'))?.value, 'swapped');
    assert.deepEqual(await mc.version(), ['VERSION', '1.6.18']);
  });

  it('500 keys in parallel, values up to 20 KB', async () => {
    const val = (i: number) => `${i}:` + 'z'.repeat((i * 211) % 20_000);
    await Promise.all(Array.from({ length: 500 }, (_, i) => mc.set(`p${i}`, val(i))));
    const got = await Promise.all(Array.from({ length: 500 }, (_, i) => mc.get<string>(`p${i}`)));
    got.forEach((g, i) => assert.equal(g?.value, val(i), `p${i}`));
  });
});

describe('pymemcache (Python, text protocol)', { skip: pymemcacheMissing }, () => {
  let srv: ServerHandle;
  before(async () => { srv = await startOn('net', { port: 0, memoryMb: 16 }); });
  after(async () => { await srv?.close(); });

  it('set/get/get_many/delete/add/replace/append/prepend/incr/decr/touch/gets/cas/stats/flush_all', async () => {
    const script = `
import sys
from pymemcache.client.base import Client
c = Client(('127.0.0.1', int(sys.argv[1])), connect_timeout=5, timeout=5)
assert c.set('a', b'hello') is True
assert c.get('a') == b'hello'
c.set_many({'b': b'1', 'c': b'22'})
assert c.get_many(['a', 'b', 'c', 'nosuch']) == {'a': b'hello', 'b': b'1', 'c': b'22'}
assert c.delete('b', noreply=False) is True
assert c.delete('b', noreply=False) is False
assert c.add('a', b'x', noreply=False) is False
assert c.replace('a', b'mid', noreply=False) is True
assert c.append('a', b'>', noreply=False) is True
assert c.prepend('a', b'<', noreply=False) is True
assert c.get('a') == b'<mid>'
c.set('n', b'10')
assert c.incr('n', 5) == 15
assert c.decr('n', 20) == 0
assert c.incr('nosuch', 1) is None
assert c.touch('n', 100, noreply=False) is True
v, cas = c.gets('a')
assert v == b'<mid>'
assert c.cas('a', b'swapped', cas, noreply=False) is True
assert c.cas('a', b'again', cas, noreply=False) is False
assert c.get('a') == b'swapped'
big = bytes(range(256)) * 4000
assert c.set('big', big) is True
assert c.get('big') == big
s = c.stats()
assert s[b'version'] == b'1.6.18', s
assert c.version() == b'1.6.18'
assert c.flush_all(noreply=False) is True
assert c.get('a') is None
print('ok')
`;
    // (asynchronously: the server runs in this process)
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(PYTHON, ['-c', script, String(srv.port)], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
  });
});
