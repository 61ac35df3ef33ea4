// Without the addon (not installed, install scripts skipped, no prebuild for the platform) every public entry point runs
// on the portable backend (node:net) and says so with exactly one process warning (code MP_ERR_BACKEND_UNAVAILABLE);
// only an explicit `backend: 'uring'` throws. Each case runs in a child process with MEGAPIPE_NO_ADDON=1, which makes
// the loader (src/native.ts) behave as if no addon existed; this process keeps its addon (test/helpers.ts still
// demands io_uring where the kernel has it). Bytes are verified end to end; nothing here measures time.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { prng, randomBytes } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = (rel: string): string => pathToFileURL(join(root, 'dist', rel)).href;
const { version } = (await import(dist('src/version.js'))) as { version: string };
const prngBytes = (seed: number, n: number): Buffer => randomBytes(prng(seed), n);

interface ChildResult { code: number | null; stdout: string; stderr: string; json: Record<string, unknown> }

/**
 * Runs node with MEGAPIPE_NO_ADDON=1 (and no MEGAPIPE_BACKEND): `script` (an ES module), or `args`; at most 60 s. The
 * last line of stdout is parsed as JSON when `script` is given (the child's report).
 */
function runChild(script: string | null, args: string[] = []): Promise<ChildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, MEGAPIPE_NO_ADDON: '1' };
  delete env.MEGAPIPE_BACKEND;
  // a script file, not -e: serve()'s worker threads inherit the process's execArgv, where --input-type is refused
  const file = script === null ? null : join(mkdtempSync(join(tmpdir(), 'megapipe-no-addon-')), 'child.mjs');
  if (file !== null) writeFileSync(file, script!);
  const argv = file === null ? args : [file];
  return new Promise<ChildResult>((resolve, reject) => {
    const child = spawn(process.execPath, argv, { env, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      let json: Record<string, unknown> = {};
      if (script !== null) {
        if (code !== 0) { reject(new Error(`child exited ${code}: ${stderr}`)); return; }
        try { json = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>; } catch { reject(new Error(`no report from the child: ${stdout} ${stderr}`)); return; }
      }
      resolve({ code, stdout, stderr, json });
    });
  }).finally(() => { if (file !== null) rmSync(dirname(file), { recursive: true, force: true }); });
}

const WARNING = '[MP_ERR_BACKEND_UNAVAILABLE] Warning: megapipe: using the portable backend (node:net): native addon unavailable: MEGAPIPE_NO_ADDON=1';

/** The warnings a child saw (collected by its 'warning' handler), as `code: message`. */
function fallbackWarnings(r: ChildResult): string[] {
  return (r.json.warnings as { code: string; message: string }[]).map((w) => `${w.code}: ${w.message}`);
}
function assertOneWarning(r: ChildResult): void {
  assert.deepEqual(fallbackWarnings(r), ['MP_ERR_BACKEND_UNAVAILABLE: megapipe: using the portable backend (node:net): native addon unavailable: MEGAPIPE_NO_ADDON=1'], r.stderr);
}

// A child's script: collects warnings, imports megapipe, runs `body` (which sets `out`), prints {…out, warnings}.
const script = (body: string): string => `
  const warnings = [];
  process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
  const net = await import('node:net');
  const m = await import(${JSON.stringify(dist('src/index.js'))});
  const out = {};
  // one round trip of \`bytes\` through an echo server at \`port\`: the bytes that came back, as a sha256
  const echo = (port, bytes) => new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    const got = [];
    const timer = setTimeout(() => { c.destroy(); reject(new Error('echo timed out')); }, 30000);
    c.on('data', (d) => { got.push(d); if (got.reduce((n, b) => n + b.length, 0) >= bytes.length) c.end(); });
    c.on('error', reject);
    c.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(got)); });
    c.write(bytes);
  });
  const { createHash } = await import('node:crypto');
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  const payload = (await import('node:crypto')).randomBytes(200000);
  ${body}
  setImmediate(() => process.stdout.write(JSON.stringify({ ...out, sent: sha(payload), warnings }) + '\\n'));`;

describe('no addon (MEGAPIPE_NO_ADDON=1): the library on node:net, one warning', () => {
  it("listen() and createChannel() ('auto'): the README's echo server round-trips 200 KB byte for byte", async () => {
    const r = await runChild(script(`
      const ch = m.createChannel();
      const l = m.listen({ port: 0 });
      const lh = ch.register(l, 'echo');
      ch.onEvent((ev) => {
        if (ev.type === 'accept') ch.read(ev.handle);
        else if (ev.type === 'read') { if (ev.result > 0) ch.write(ev.handle, ev.buffer, ev.offset, ev.result); else ch.disconnect(ev.handle); }
        else if (ev.type === 'error') ch.disconnect(ev.handle, true);
      });
      ch.accept(lh, { lwsocket: true });
      out.backend = ch.backend; out.members = l.fds.length;
      out.got = sha(await echo(l.port, payload));
      out.avail = m.uringAvailability();
      ch.close(); l.close();`));
    assert.equal(r.json.backend, 'portable');
    assert.equal(r.json.members, 1);
    assert.equal(r.json.got, r.json.sent, 'the 200 KB came back unchanged');
    assert.deepEqual(r.json.avail, { ok: false, reason: 'native addon unavailable: MEGAPIPE_NO_ADDON=1' });
    assertOneWarning(r);
  });

  it('listen() binds at once, as with the addon: a port in use throws EADDRINUSE (syscall bind) synchronously', async () => {
    const r = await runChild(script(`
      const a = m.listen({ port: 0 });
      const ch = m.createChannel(); ch.register(a); ch.flush();
      try { m.listen({ port: a.port }); out.second = 'bound'; } catch (e) { out.second = [e.code, e.syscall, e.port === a.port]; }
      ch.close(); a.close();`));
    assert.deepEqual(r.json.second, ['EADDRINUSE', 'bind', true]);
    assertOneWarning(r);
  });

  it("createChannel({ backend: 'uring' }) throws MP_ERR_BACKEND_UNAVAILABLE saying why; 'auto' and 'portable' do not", async () => {
    const r = await runChild(script(`
      try { m.createChannel({ backend: 'uring' }); out.uring = 'created'; } catch (e) { out.uring = e.code + ': ' + e.message; }
      const a = m.createChannel({ backend: 'auto' }); out.auto = a.backend; a.close();
      const p = m.createChannel({ backend: 'portable' }); out.portable = p.backend; p.close();`));
    assert.equal(r.json.uring, 'MP_ERR_BACKEND_UNAVAILABLE: io_uring backend requested but unavailable: native addon unavailable: MEGAPIPE_NO_ADDON=1');
    assert.equal(r.json.auto, 'portable');
    assert.equal(r.json.portable, 'portable');
    assertOneWarning(r);
  });

  it('serve() with 2 workers: both on node:net, echoes verified, one warning for the process', async () => {
    const r = await runChild(script(`
      const server = await m.serve({ module: ${JSON.stringify(join(root, 'dist/test/fixtures/no-addon-echo-worker.js'))}, workers: 2, port: 0 });
      out.partitioned = server.partitioned;
      const got = [];
      for (let i = 0; i < 4; i++) got.push(sha(await echo(server.port, payload)));
      out.got = got;
      const stats = await server.close(2000);
      out.backends = stats.map((s) => s.channel.backend);
      out.accepted = stats.reduce((n, s) => n + s.accepted, 0);`));
    assert.deepEqual(r.json.got, [r.json.sent, r.json.sent, r.json.sent, r.json.sent]);
    assert.deepEqual(r.json.backends, ['portable', 'portable']);
    assert.equal(r.json.accepted, 4);
    assert.equal(r.json.partitioned, false);
    assertOneWarning(r);
  });

  it('megapipe/net: createServer().listen() serves an echo on node:net', async () => {
    const r = await runChild(script(`
      const mnet = await import(${JSON.stringify(dist('src/net/index.js'))});
      const server = mnet.createServer((s) => s.pipe(s));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      out.got = sha(await echo(server.address().port, payload));
      out.lwsocket = false;
      server.on('connection', (s) => { out.lwsocket = s.lwsocket === true; });
      await echo(server.address().port, Buffer.from('x'));
      await new Promise((resolve) => server.close(resolve));`));
    assert.equal(r.json.got, r.json.sent);
    assert.equal(r.json.lwsocket, false, 'a node:net socket, not an lwsocket');
    assertOneWarning(r);
  });

  it('megapipe/register: an unchanged node:net server stays on node:net, said once (the warning, no second notice)', async () => {
    const r = await runChild(script(`
      await import(${JSON.stringify(dist('src/register.js'))});
      const server = net.createServer((s) => s.pipe(s));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      out.got = sha(await echo(server.address().port, payload));
      await new Promise((resolve) => server.close(resolve));`));
    assert.equal(r.json.got, r.json.sent);
    assertOneWarning(r);
    assert.doesNotMatch(r.stderr, /megapipe\/net: /, 'no notice beside the warning');
  });

  it("megapipe/http's startServer() with 2 workers serves a file", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'megapipe-no-addon-http-'));
    try {
      writeFileSync(join(dir, 'index.html'), '<p>portable</p>');
      const r = await runChild(script(`
        const http = await import(${JSON.stringify(dist('apps/http/index.js'))});
        const s = await http.startServer({ root: ${JSON.stringify(dir)}, port: 0, workers: 2 });
        const res = await fetch('http://127.0.0.1:' + s.port + '/index.html');
        out.status = res.status; out.body = await res.text();
        await s.close(2000);`));
      assert.equal(r.json.status, 200);
      assert.equal(r.json.body, '<p>portable</p>');
      assertOneWarning(r);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

// ---- the commands ------------------------------------------------------------------------------------------------
interface Bin { name: string; file: string }
const BINS: Bin[] = [
  { name: 'megapipe-echo-server', file: 'bin/echo-server.js' },
  { name: 'megapipe-memcached', file: 'apps/memcached/cli.js' },
  { name: 'megapipe-http', file: 'apps/http/cli.js' },
];

// commands still running when a case fails: killed after the suite
const running = new Set<ChildProcess>();

/** Starts a bin with MEGAPIPE_NO_ADDON=1, waits (bounded) for "listening on HOST:PORT"; stop() sends SIGTERM. */
async function startBin(file: string, args: string[]): Promise<{ port: number; stop(): Promise<{ code: number | null; stderr: string }> }> {
  const env: NodeJS.ProcessEnv = { ...process.env, MEGAPIPE_NO_ADDON: '1' };
  delete env.MEGAPIPE_BACKEND;
  const child = spawn(process.execPath, [join(root, 'dist', file), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  child.stderr.on('data', (d: Buffer) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${file}: no "listening on" within 30 s; stderr: ${err}`)); }, 30_000);
    const check = (): void => {
      const m = /listening on [^\s]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout.on('data', check);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`${file} exited (${code}) before listening: ${err}`)); });
  });
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return { code, stderr: err };
    },
  };
}

/** A request/reply exchange on a fresh connection: sends `req`, reads until `done(reply)` (bounded: 20 s). */
function exchange(port: number, req: Buffer | string, done: (reply: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`no complete reply; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`)); }, 20_000);
    c.on('data', (d: Buffer) => { chunks.push(d); if (done(Buffer.concat(chunks))) { clearTimeout(timer); c.destroy(); resolve(Buffer.concat(chunks)); } });
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
    c.write(req);
  });
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

describe('no addon (MEGAPIPE_NO_ADDON=1): the commands', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'megapipe-no-addon-bins-'));
    writeFileSync(join(dir, 'hello.txt'), 'hello from node:net\n');
  });
  after(() => {
    for (const c of running) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  for (const bin of BINS) {
    it(`${bin.name} --version prints megapipe's version (${version}) and no warning`, async () => {
      const r = await runChild(null, [join(root, 'dist', bin.file), bin.name === 'megapipe-memcached' ? '-V' : '--version']);
      assert.equal(r.stdout, `${bin.name} ${version}\n`);
      assert.equal(count(r.stderr, 'MP_ERR_BACKEND_UNAVAILABLE'), 0, r.stderr);
    });
  }

  for (const workers of [1, 2]) {
    it(`megapipe-echo-server --workers ${workers}: 200 KB echoed byte for byte, one warning, exit 0 on SIGTERM`, async () => {
      const s = await startBin('bin/echo-server.js', ['--port', '0', '--workers', String(workers)]);
      const payload = prngBytes(11, 200_000);
      const reply = await exchange(s.port, payload, (b) => b.length >= payload.length);
      const end = await s.stop();
      assert.ok(reply.equals(payload), 'the bytes came back unchanged');
      assert.equal(end.code, 0, end.stderr);
      assert.equal(count(end.stderr, WARNING), 1, end.stderr);
      assert.equal(count(end.stderr, 'Warning:'), 1, end.stderr);
    });
  }

  it('megapipe-memcached -t 2: set then get (text protocol), one warning, exit 0 on SIGTERM', async () => {
    const s = await startBin('apps/memcached/cli.js', ['-p', '0', '-t', '2', '-m', '16']);
    const set = (await exchange(s.port, 'set k 5 0 11\r\nhello world\r\n', (b) => b.includes('\r\n'))).toString('latin1');
    const get = (await exchange(s.port, 'get k\r\n', (b) => b.toString('latin1').endsWith('END\r\n'))).toString('latin1');
    const end = await s.stop();
    assert.equal(set, 'STORED\r\n');
    assert.equal(get, 'VALUE k 5 11\r\nhello world\r\nEND\r\n');
    assert.equal(end.code, 0, end.stderr);
    assert.equal(count(end.stderr, WARNING), 1, end.stderr);
    assert.equal(count(end.stderr, 'Warning:'), 1, end.stderr);
  });

  it('megapipe-http --workers 2: GET of a file, one warning, exit 0 on SIGTERM', async () => {
    const s = await startBin('apps/http/cli.js', ['--root', dir, '--port', '0', '--workers', '2']);
    const reply = (await exchange(s.port, 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', (b) => b.toString('latin1').endsWith('hello from node:net\n'))).toString('latin1');
    const end = await s.stop();
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(end.code, 0, end.stderr);
    assert.equal(count(end.stderr, WARNING), 1, end.stderr);
    assert.equal(count(end.stderr, 'Warning:'), 1, end.stderr);
  });
});
