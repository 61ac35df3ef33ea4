// Review of the TCP options and resets (setSocketOption / reset on lwsockets): when the submission queue is full (an
// io_uring_enter refused for now left its SQEs there), an option or a reset must take effect or throw EAGAIN — never
// report success and do nothing. Forced for real under seccomp-run (test/fixtures/seccomp-run.c), as
// channel-submit-faults.test.ts does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as net from 'node:net';
import { uringSkip } from './helpers.js';
import { createChannel, MegapipeError } from '../src/index.js';
import { native } from '../src/native.js';

const here = fileURLToPath(new URL('.', import.meta.url));

function buildLauncher(): { bin: string; skip: string | false } {
  if (uringSkip) return { bin: '', skip: uringSkip };
  const dir = mkdtempSync(path.join(tmpdir(), 'megapipe-review-sockopt-'));
  const bin = path.join(dir, 'seccomp-run');
  const cc = spawnSync('cc', ['-O2', '-o', bin, path.resolve(here, '../../test/fixtures/seccomp-run.c')], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) return { bin, skip: `no C compiler (${cc.error?.message ?? cc.stderr})` };
  const probe = spawnSync(bin, ['--deny', 'io_uring_setup=EPERM', '--', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return { bin, skip: `seccomp filters are not available here: ${probe.stderr}` };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { bin, skip: false };
}
const launcher = buildLauncher();

function run(args: string[], ms = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(launcher.bin, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { err += String(d); });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

interface Result { lw: boolean; sqRefused: number; setOption: string; reset: string; peer: string; keepIdle: number | string; open0: boolean }

async function sqFull(refusals: number): Promise<Result> {
  const fixture = path.join(here, 'fixtures', 'review-sockopt-sqfull.js');
  const r = await run(['--window', `io_uring_enter:ARG1>7=EAGAIN@1+${refusals}`, '--', process.execPath, fixture]);
  assert.equal(r.code, 0, r.err);
  const line = r.out.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no result line: ${r.out} ${r.err}`);
  const res = JSON.parse(line!) as Result;
  assert.ok(res.lw, 'lwsockets');
  assert.equal(res.sqRefused, 1, `the flush was refused, leaving the SQ full: ${line}`);
  return res;
}

describe('review: socket options and reset with the submission queue full (uring, seccomp)', { skip: launcher.skip }, () => {
  it('one refused enter: the option is set and the reset is a reset (the enter that follows makes room)', async () => {
    const res = await sqFull(1);
    assert.equal(res.setOption, 'ok', JSON.stringify(res));
    assert.equal(res.keepIdle, 1234, `setSocketOption reported success, the option was not set: ${JSON.stringify(res)}`);
    assert.equal(res.reset, 'ok', JSON.stringify(res));
    assert.equal(res.peer, 'ECONNRESET', `reset() reported success, the peer saw a clean end: ${JSON.stringify(res)}`);
  });

  it('two refused enters: setSocketOption throws EAGAIN (not set) instead of reporting success; the reset then works', async () => {
    const res = await sqFull(2);
    assert.equal(res.setOption, 'EAGAIN', JSON.stringify(res));
    assert.equal(res.keepIdle, 7200, JSON.stringify(res));
    assert.equal(res.reset, 'ok', JSON.stringify(res));
    assert.equal(res.peer, 'ECONNRESET', JSON.stringify(res));
  });

  it('three refused enters: reset throws EAGAIN and leaves the connection open (not a clean close that claims to be a reset)', async () => {
    const res = await sqFull(3);
    assert.equal(res.setOption, 'EAGAIN', JSON.stringify(res));
    assert.equal(res.reset, 'EAGAIN', JSON.stringify(res));
    assert.equal(res.peer, 'open', JSON.stringify(res));
    assert.ok(res.open0, JSON.stringify(res));
  });
});

describe('review: socket options of a registered fd that is not TCP (uring)', { skip: uringSkip }, () => {
  it('setsockopt(2)\'s own EOPNOTSUPP is reported as such, not as a kernel without socket commands for lwsockets', async () => {
    const sockPath = path.join(mkdtempSync(path.join(tmpdir(), 'megapipe-review-unix-')), 's');
    const srv = net.createServer((s) => { s.on('error', () => {}); });
    await new Promise<void>((r) => srv.listen(sockPath, r));
    const c = net.connect(sockPath);
    await new Promise((r) => c.once('connect', r));
    const fd = native!.dupFd((c as unknown as { _handle: { fd: number } })._handle.fd);
    const ch = createChannel({ backend: 'uring' });
    try {
      const h = ch.register(fd);
      assert.equal(ch.isLwsocket(h), false);
      ch.setSocketOption(h, 'keepAlive', true);   // SOL_SOCKET: a Unix socket has it
      assert.equal(ch.socketOption(h, 'keepAlive'), 1);
      for (const f of [() => ch.setSocketOption(h, 'noDelay', false), () => ch.socketOption(h, 'keepAliveDelay')]) {
        assert.throws(f, (e: unknown) => e instanceof MegapipeError && (e.code === 'EOPNOTSUPP' || e.code === 'ENOTSUP') && !/lwsockets/.test(e.message), 'TCP options of a Unix socket');
      }
    } finally {
      ch.close();
      c.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
      rmSync(path.dirname(sockPath), { recursive: true, force: true });
    }
  });
});
