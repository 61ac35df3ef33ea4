// Review of listen()'s reusePort (issue 17): a listener of several members sets SO_REUSEPORT to join them, which let a
// second such listener join it without anyone asking to share the port (two `serve()`s, two megapipe-http on one
// port: the second started, no EADDRINUSE, and never got a connection, its CPU steering program having replaced the
// first's); and `reusePort: true` with `partitions` cannot work (the steering is one cBPF program per SO_REUSEPORT
// group, numbering members in join order, so a second partitioned group on the port steers to the first's members).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { listen, type Listener } from '../src/index.js';
import { native } from '../src/native.js';
import { uringSkip, withTimeout } from './helpers.js';

const code = (f: () => Listener): string => { try { f().close(); return 'bound'; } catch (e) { return (e as { code?: string }).code ?? String(e); } };

describe('review: listen() and a port already listened on', { skip: uringSkip }, () => {
  it('a listener of several members without reusePort gets EADDRINUSE on a port in use, as a one-member one does', () => {
    for (const first of [{ members: 2 }, { partitions: [[0], [1]] }, {}, { reusePort: true }, { members: 2, reusePort: true }]) {
      const a = listen({ host: '127.0.0.1', port: 0, ...first });
      try {
        assert.equal(code(() => listen({ host: '127.0.0.1', port: a.port })), 'EADDRINUSE', `one member after ${JSON.stringify(first)}`);
        assert.equal(code(() => listen({ host: '127.0.0.1', port: a.port, members: 2 })), 'EADDRINUSE', `members: 2 after ${JSON.stringify(first)}`);
        assert.equal(code(() => listen({ host: '127.0.0.1', port: a.port, partitions: [[0], [1]] })), 'EADDRINUSE', `partitions after ${JSON.stringify(first)}`);
      } finally { a.close(); }
    }
    // a free port still binds (and port 0)
    const b = listen({ host: '127.0.0.1', port: 0, members: 3 });
    const port = b.port;
    b.close();
    const c = listen({ host: '127.0.0.1', port, members: 3 });
    assert.equal(c.port, port);
    c.close();
  });

  it('reusePort still shares: two multi-member listeners that both ask for it', async () => {
    const a = listen({ host: '127.0.0.1', port: 0, members: 2, reusePort: true });
    const b = listen({ host: '127.0.0.1', port: a.port, members: 2, reusePort: true });
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const s = net.connect(a.port, '127.0.0.1');
        s.on('error', () => {});
        socks.push(s);
        await withTimeout(new Promise((r) => s.once('connect', r)), 10_000, 'connect');
      }
      const queued = (l: Listener) => l.fds.reduce((n, fd) => n + native!.acceptQueueLength(fd), 0);
      assert.equal(queued(a) + queued(b), 64);
      assert.ok(queued(b) > 0 && queued(a) > 0, `both share the connections (${queued(a)}, ${queued(b)})`);
    } finally {
      for (const s of socks) s.destroy();
      a.close(); b.close();
    }
  });

  it('reusePort with partitions is refused (the CPU steering cannot be shared)', () => {
    assert.throws(() => listen({ host: '127.0.0.1', port: 0, partitions: [[0], [1]], reusePort: true }), (e: unknown) => e instanceof TypeError && /reusePort/.test(e.message));
  });
});
