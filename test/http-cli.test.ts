// The megapipe-http command line: argument handling, the "listening on" line, and graceful shutdown on
// SIGTERM/SIGINT (the in-flight response completes, exit status 0).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bounded, RawClient } from './http-helpers.test.js';

const CLI = fileURLToPath(new URL('../apps/http/cli.js', import.meta.url));
let tmp: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-cli-'));
  fs.writeFileSync(path.join(tmp, 'index.html'), '<p>cli</p>');
  fs.writeFileSync(
    path.join(tmp, 'handler.mjs'),
    `import { existsSync } from 'node:fs';
    export default async (req, res) => {
      if (req.path === '/slow') { await new Promise((r) => setTimeout(r, Number(req.query.get('ms')))); return res.send('finished'); }
      // says on stderr that it runs, then answers once the file named by ?until exists (the test's go-ahead)
      if (req.path === '/held') {
        process.stderr.write('held: started\\n');
        while (!existsSync(req.query.get('until'))) await new Promise((r) => setTimeout(r, 5));
        return res.send('finished');
      }
    };`,
  );
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Running {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  /** Resolves once stderr has shown `text` (bounded). */
  stderrShows: (text: string) => Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "listening on" line: ${out} ${err}`));
    }, 15_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const stderrShows = (text: string) =>
      bounded(new Promise<void>((ok) => {
        const check = () => (err.includes(text) ? (child.stderr!.off('data', check), ok()) : undefined);
        child.stderr!.on('data', check);
        check();
      }), `"${text}" on stderr`);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on 127\.0\.0\.1:(\d+)$/m.exec(out);
      if (m) {
        clearTimeout(guard);
        resolve({ child, port: Number(m[1]), stdout: () => out, stderrShows, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(guard);
      reject(new Error(`exited with ${code} before listening: ${out} ${err}`));
    });
  });
}

function runToExit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`serves, then ${sig} finishes the in-flight response and exits 0`, async () => {
    const r = await run(['--root', tmp, '--port', '0', '--handler', path.join(tmp, 'handler.mjs')]);
    try {
      const a = await RawClient.connect(r.port);
      a.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.equal((await a.readResponse()).body.toString(), '<p>cli</p>');
      const busy = await RawClient.connect(r.port);
      const go = path.join(tmp, `go-${sig}`);
      busy.send(`GET /held?until=${encodeURIComponent(go)} HTTP/1.1\r\nHost: a\r\n\r\n`);
      // once the request is in its handler, signal; once the shutdown has closed the idle connection, let it answer
      await r.stderrShows('held: started');
      r.child.kill(sig);
      assert.equal((await a.waitClose()).length, 0, 'the idle keep-alive connection was closed');
      fs.writeFileSync(go, '');
      const resp = await busy.readResponse();
      assert.equal(resp.status, 200);
      assert.equal(resp.body.toString(), 'finished');
      assert.equal(resp.headers['connection'], 'close');
      const { code, signal } = await r.exited;
      assert.equal(signal, null);
      assert.equal(code, 0);
      assert.match(r.stdout(), /^listening on 127\.0\.0\.1:\d+\n$/);
    } finally {
      r.child.kill('SIGKILL');
    }
  });
}

async function getText(port: number, p: string): Promise<string> {
  const c = await RawClient.connect(port);
  c.send(`GET ${p} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  const r = await c.readResponse();
  c.destroy();
  return `${r.status} ${r.body.toString()}`;
}

test('--workers 2 (serve(): one channel per worker thread) and --net (in-process node:net)', async () => {
  for (const args of [['--workers', '2'], ['--net']]) {
    const r = await run(['--root', tmp, '--port', '0', '--handler', path.join(tmp, 'handler.mjs'), ...args]);
    try {
      for (let i = 0; i < 8; i++) assert.equal(await getText(r.port, i % 2 ? '/' : '/slow?ms=1'), i % 2 ? '200 <p>cli</p>' : '200 finished');
      r.child.kill('SIGTERM');
      const ex = await r.exited;
      assert.equal(ex.code, 0, `${args.join(' ')}: ${JSON.stringify(ex)}`);
    } finally {
      r.child.kill('SIGKILL');
    }
  }
});

test('--host and --port=VALUE forms; usage errors exit 2', async () => {
  const r = await run([`--root=${tmp}`, '--host', '127.0.0.1', '--port=0', '--workers', '1']);
  r.child.kill('SIGTERM');
  const ex = await r.exited;
  assert.equal(ex.code, 0, JSON.stringify(ex) + r.stdout());
  const none = await runToExit([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage: megapipe-http/);
  const bad = await runToExit(['--root', tmp, '--port', 'eighty']);
  assert.equal(bad.code, 2);
  const unknown = await runToExit(['--root', tmp, '--frobnicate']);
  assert.equal(unknown.code, 2);
  const help = await runToExit(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--root DIR/);
});

test('--cache-file-max 0 serves every file from disk (through the connection), spliced or read, byte for byte', async () => {
  const { parseArgs } = await import('../apps/http/cli.js');
  assert.deepEqual(parseArgs(['--root', tmp, '--cache-file-max', '0', '--cache-max', '4096', '--open-files', '0']).static, { maxCachedFileSize: 0, maxCacheSize: 4096, maxOpenFiles: 0 });
  assert.deepEqual(parseArgs(['--root', tmp, '--splice-pipes', '0', '--splice-min=4096']).limits, { splicePipes: 0, spliceMinBytes: 4096 });
  assert.deepEqual(parseArgs(['--root', tmp, '--sendfile-min', '0']).limits, { sendfileMinBytes: 0 });
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 11)) & 0xff;
  fs.writeFileSync(path.join(tmp, 'big.bin'), big);
  // defaults: big.bin sent with sendfile (io_uring; it is in the page cache), kept open; spliced; then read into send
  // memory, opened per request
  for (const extra of [[], ['--sendfile-min', '0'], ['--splice-pipes', '0', '--sendfile-min', '0', '--open-files', '0']]) {
    const r = await run(['--root', tmp, '--port', '0', '--cache-file-max=0', ...extra]);
    try {
      for (const [p, want] of [['/big.bin', big], ['/index.html', Buffer.from('<p>cli</p>')], ['/big.bin', big]] as const) {
        const res = await fetch(`http://127.0.0.1:${r.port}${p}`);
        assert.equal(res.status, 200);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(want), `${p} intact (${extra.join(' ') || 'defaults'})`);
      }
    } finally {
      r.child.kill('SIGTERM');
      assert.equal((await r.exited).code, 0);
    }
  }
});

test('--nocopy-min: cached responses sent from the cache itself or copied, byte for byte, pipelined too', async () => {
  const { parseArgs } = await import('../apps/http/cli.js');
  assert.deepEqual(parseArgs(['--root', tmp, '--nocopy-min', '4096']).limits, { noCopyMinBytes: 4096 });
  const files = [5000, 40_000, 100_000, 300_000].map((n, k) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + k * 13 + (i >> 9)) & 0xff;
    fs.writeFileSync(path.join(tmp, `c${k}.bin`), b);
    return { p: `/c${k}.bin`, b };
  });
  // 0: every cached response without a copy; a huge minimum: every one copied
  for (const min of ['0', String(2 ** 31 - 1)]) {
    const r = await run(['--root', tmp, '--port', '0', '--nocopy-min', min]);
    try {
      for (let round = 0; round < 2; round++) {   // the first request caches each file, the second sends from the cache
        for (const f of files) {
          const res = await fetch(`http://127.0.0.1:${r.port}${f.p}`);
          assert.equal(res.status, 200);
          assert.ok(Buffer.from(await res.arrayBuffer()).equals(f.b), `${f.p} intact (--nocopy-min ${min})`);
        }
      }
      // pipelined behind a file not cached yet (answered asynchronously): the cached responses behind it are kept as
      // they are (not copied), then sent in order
      const fresh = { p: `/fresh${min.length}.bin`, b: Buffer.alloc(70_000, min.length) };
      fs.writeFileSync(path.join(tmp, fresh.p), fresh.b);
      const order = [fresh, ...files, files[1]!];
      const s = net.connect(r.port, '127.0.0.1');
      const reqs = order.map((f, k) => `GET ${f.p} HTTP/1.1\r\nHost: x\r\n${k === order.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('');
      s.end(reqs);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        s.on('data', (d: Buffer) => parts.push(d));
        s.on('end', () => resolve(Buffer.concat(parts)));
        s.on('error', reject);
      });
      let at = 0;
      for (const f of order) {
        const end = got.indexOf('\r\n\r\n', at);
        assert.ok(end > 0 && /^HTTP\/1\.1 200 /.test(got.subarray(at, end).toString('latin1')), `a 200 head for ${f.p}`);
        assert.ok(got.subarray(end + 4, end + 4 + f.b.length).equals(f.b), `${f.p} pipelined intact (--nocopy-min ${min})`);
        at = end + 4 + f.b.length;
      }
      assert.equal(at, got.length, 'nothing more');
    } finally {
      r.child.kill('SIGTERM');
      assert.equal((await r.exited).code, 0);
    }
  }
});
