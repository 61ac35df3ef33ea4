// Submission faults, forced for real: the process runs under seccomp-run (test/fixtures/seccomp-run.c), whose seccomp
// filter makes the kernel refuse some of its io_uring system calls. Every request staged must reach the kernel or
// be kept and retried (a transient refusal: EAGAIN, EBUSY, ENOMEM), or fail with the error on its own connection (a
// lasting one): never dropped, never an uncaught exception, no byte lost or corrupted on the connections that stay.
// And a ring that cannot be created although the probe's could (a registration refused) makes 'auto' fall back.
// Plus, white-box: a request row the native side refuses completes with EINVAL, not as a success.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectSocket, seccompLauncher, startEchoServer, uringSkip, waitFor, withTimeout } from './helpers.js';
import { native } from '../src/native.js';

const here = fileURLToPath(new URL('.', import.meta.url));

const launcher = seccompLauncher();

/** Runs `node <args>` under seccomp-run with `rules` (bounded in time); resolves with exit code and output. */
function runUnder(rules: string[], args: string[], ms = 120_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(launcher.bin, [...rules, '--', process.execPath, ...args], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { err += String(d); });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

interface LoadResult {
  verified: number; ended: Record<string, number>; mismatches: number; lateServed: boolean;
  serverErrors: Record<string, number>; listenerErrors: Record<string, number>; open: number;
  accepted: number; disconnects: number; handles: number;
  stats: { submitFailures: number; requestsRefused: number; recycleRefused: number };
}

async function echoLoad(rules: string[], conns: number, bytes: number): Promise<LoadResult> {
  const r = await runUnder(rules, ['fixtures/echo-load.js', String(conns), String(bytes)]);
  assert.equal(r.code, 0, `the echo process survived (exit ${r.code}): ${r.err}`);
  const line = r.out.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no result line: ${r.out} ${r.err}`);
  const res = JSON.parse(line!) as LoadResult;
  // every handle accounted for, whatever was refused: a disconnect event per accepted connection, only the listener left
  assert.equal(res.disconnects, res.accepted, `a disconnect event per accepted connection: ${JSON.stringify(res)}`);
  assert.ok(res.accepted >= conns + 1, 'every client and the late one were accepted');
  assert.equal(res.handles, 1, 'only the listener handle is left');
  return res;
}

describe('submission refused by the kernel (uring, seccomp)', { skip: launcher.skip }, () => {
  for (const rule of ['io_uring_enter:ARG1>0=EAGAIN/2', 'io_uring_enter:ARG1>0=EBUSY/3', 'io_uring_enter:ARG1>0=ENOMEM/5', 'io_uring_enter=EAGAIN/4']) {
    it(`transient (${rule}): every request is retried, every byte arrives`, async () => {
      const r = await echoLoad(['--flaky', rule], 48, 512 * 1024);
      assert.equal(r.mismatches, 0, 'no byte differs');
      assert.equal(r.verified, 48, `every client got its bytes back: ${JSON.stringify(r.ended)}`);
      assert.deepEqual(r.serverErrors, {});
      assert.ok(r.lateServed, 'the listener still accepts and echoes afterwards');
      assert.equal(r.open, 0, 'every connection was cleaned up');
      assert.ok(r.stats.submitFailures > 0, 'the kernel did refuse submissions');
      assert.equal(r.stats.requestsRefused, 0);
      assert.equal(r.stats.recycleRefused, 0);
    });
  }

  for (const rule of ['io_uring_enter:ARG1>0=EINVAL@20+3', 'io_uring_enter:ARG1>0=EFAULT@5+10']) {
    it(`lasting (${rule}): the refused requests fail on their own connections; the others and later ones are served`, async () => {
      const r = await echoLoad(['--window', rule], 48, 256 * 1024);
      const code = rule.includes('EINVAL') ? 'EINVAL' : 'EFAULT';
      assert.equal(r.mismatches, 0, 'no byte differs');
      const failed = 48 - r.verified;
      assert.ok(failed > 0, 'some requests were refused');
      assert.deepEqual(Object.keys(r.serverErrors), [code], `error events carry the refusal: ${JSON.stringify(r.serverErrors)}`);
      assert.equal(r.serverErrors[code], failed, 'one error event per client that was cut short');
      assert.ok(!('timeout' in r.ended), `no connection was left hanging: ${JSON.stringify(r.ended)}`);
      assert.ok(r.lateServed, 'the listener still accepts and echoes afterwards');
      assert.equal(r.open, 0, 'every connection was cleaned up');
    });
  }
});

describe("io_uring refused when the channel is created (seccomp)", { skip: launcher.skip }, () => {
  const script = (backend: string) => `
    import('./../src/index.js').then((m) => {
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.message));
      let out;
      try { const ch = m.createChannel({ backend: '${backend}' }); out = { backend: ch.backend }; ch.close(); }
      catch (e) { out = { code: e.code, message: e.message }; }
      setImmediate(() => console.log(JSON.stringify({ ...out, warnings })));
    });`;

  it("a registration refused after the probe succeeded: 'auto' falls back to the portable backend and says why, once", async () => {
    // IORING_REGISTER_EVENTFD (4) refused: the probe never registers an eventfd, a channel does
    const r = await runUnder(['--deny', 'io_uring_register:ARG1=4=EPERM'], ['--input-type=module', '-e', script('auto')]);
    const res = JSON.parse(r.out) as { backend?: string; warnings: string[] };
    assert.equal(res.backend, 'portable', r.out + r.err);
    assert.equal(res.warnings.length, 1);
    assert.match(res.warnings[0]!, /portable backend.*creating an io_uring channel failed.*eventfd/);
  });

  it("the same with backend 'uring': a clear error, no fallback", async () => {
    const r = await runUnder(['--deny', 'io_uring_register:ARG1=4=EPERM'], ['--input-type=module', '-e', script('uring')]);
    const res = JSON.parse(r.out) as { code?: string; message?: string; warnings: string[] };
    assert.equal(res.code, 'EPERM', r.out);
    assert.match(res.message!, /eventfd.*not permitted/i);
    assert.deepEqual(res.warnings, []);
  });

  it("io_uring_setup refused (EPERM): 'auto' falls back, 'uring' throws MP_ERR_BACKEND_UNAVAILABLE", async () => {
    const a = JSON.parse((await runUnder(['--deny', 'io_uring_setup=EPERM'], ['--input-type=module', '-e', script('auto')])).out) as { backend?: string; warnings: string[] };
    assert.equal(a.backend, 'portable');
    assert.match(a.warnings.join(), /io_uring_setup refused \(EPERM\)/);
    const u = JSON.parse((await runUnder(['--deny', 'io_uring_setup=EPERM'], ['--input-type=module', '-e', script('uring')])).out) as { code?: string; message?: string };
    assert.equal(u.code, 'MP_ERR_BACKEND_UNAVAILABLE');
    assert.match(u.message!, /io_uring_setup refused \(EPERM\)/);
  });
});

describe('a request the native side refuses completes with EINVAL (uring, white-box)', { skip: uringSkip }, () => {
  it('a no-copy send whose reference no longer covers it: an error event (EINVAL) on its connection, nothing re-sent', async () => {
    let target = -1;
    const server = await startEchoServer('uring', {
      limits: { noCopyMinBytes: 0 },
      tap(ev, ch) {
        if (ev.type !== 'accept' || target >= 0) return;
        target = ev.handle;
        // a no-copy write (its row is staged, not yet submitted) whose reference slot then records a shorter buffer,
        // as a bug would: the native side refuses the row (its bytes lie outside the slot)
        ch.writeNoCopy(ev.handle, Buffer.alloc(4096, 7));
        const internals = ch as unknown as { nativeHandle: object; sendQueue: { tailChunk: Int32Array } };
        assert.equal(native!.channelRefSet(internals.nativeHandle, internals.sendQueue.tailChunk[ev.handle]!, new Uint8Array(16)), 0);
      },
    });
    try {
      const s = await connectSocket(server.port);
      s.on('error', () => { /* reset by the abort */ });
      await waitFor(() => server.errors.length > 0, 'the refused send to fail its connection');
      assert.deepEqual(server.errors, ['EINVAL']);
      assert.equal(server.ch.stats().requestsRefused, 1, 'refused once, not re-sent');
      await withTimeout(new Promise<void>((r) => { if (s.destroyed) r(); else s.once('close', () => r()); }), 10_000, 'the aborted connection to close');
    } finally {
      await server.close();
    }
  });

  it('the same from a timer, outside any turn, on an idle channel: the refusal wakes the loop by itself', async () => {
    // nothing else will complete (the connection's receive waits for bytes that never come): only the native side's own
    // wake-up can deliver the refused row's completion (loop.c: wake_if_posted)
    let target = -1;
    const server = await startEchoServer('uring', { limits: { noCopyMinBytes: 0 }, tap(ev) { if (ev.type === 'accept' && target < 0) target = ev.handle; } });
    try {
      const s = await connectSocket(server.port);
      s.on('error', () => { /* reset by the abort */ });
      await waitFor(() => target >= 0, 'the connection to be accepted');
      const ch = server.ch;
      setTimeout(() => {
        ch.writeNoCopy(target, Buffer.alloc(4096, 7));   // flushed by the microtask flush after this callback
        const internals = ch as unknown as { nativeHandle: object; sendQueue: { tailChunk: Int32Array } };
        assert.equal(native!.channelRefSet(internals.nativeHandle, internals.sendQueue.tailChunk[target]!, new Uint8Array(16)), 0);
      }, 0);
      await waitFor(() => server.errors.length > 0, 'the refused send to fail its connection');
      assert.deepEqual(server.errors, ['EINVAL']);
      assert.equal(server.ch.stats().requestsRefused, 1);
      await withTimeout(new Promise<void>((r) => { if (s.destroyed) r(); else s.once('close', () => r()); }), 10_000, 'the aborted connection to close');
    } finally {
      await server.close();
    }
  });
});
