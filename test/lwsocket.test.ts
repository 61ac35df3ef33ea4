// lwsockets (io_uring direct descriptors) never enter the process fd table: with `lwsocket: true` the table does not
// grow while 500 connections are open; with `lwsocket: false` it grows by one fd per connection. The clients run in a
// child process so that /proc/self/fd here counts only the server side.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { BACKENDS, fdCount, skipFor, startEchoServer, waitFor, withTimeout } from './helpers.js';

const N = 500;

/** Starts the holder child and resolves once all `n` of its connections have been echoed once. */
function holdConnections(port: number, n: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [new URL('./fixtures/hold-client.js', import.meta.url).pathname, String(port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  return withTimeout(new Promise<ChildProcess>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(`ready ${n}`)) resolve(child);
      else if (/error|timeout/.test(out)) reject(new Error(`holder: ${out.trim()}`));
    });
    child.once('exit', (code) => reject(new Error(`holder exited (${code}): ${out.trim()}`)));
  }), 30000, `${n} held connections`).catch((e) => { child.kill('SIGKILL'); throw e; });
}

function release(child: ChildProcess): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.stdin!.end(); }), 10000, 'holder exit')
    .catch(() => { child.kill('SIGKILL'); });
}

for (const backend of BACKENDS) {
  const skip = backend === 'portable' ? 'lwsockets are io_uring direct descriptors; the portable backend has only node:net sockets (fds)' : skipFor(backend);
  describe(`lwsockets and the fd table (${backend})`, { skip }, () => {
    for (const lwsocket of [true, false]) {
      it(`lwsocket: ${lwsocket} — ${N} open connections ${lwsocket ? 'leave the fd table as it was' : `add ${N} fds`}`, async () => {
        const server = await startEchoServer(backend, { lwsocket });
        let child: ChildProcess | undefined;
        try {
          const before = fdCount();
          child = await holdConnections(server.port, N);
          await waitFor(() => server.conns.size === N, `${N} connections on the server`);
          const during = fdCount();
          const conns = [...server.conns];
          assert.equal(conns.filter((h) => server.ch.isLwsocket(h)).length, lwsocket ? N : 0, 'isLwsocket');
          if (lwsocket) assert.ok(during - before <= 2, `fd table grew by ${during - before} with ${N} lwsockets open`);
          else assert.ok(during - before >= N && during - before <= N + 2, `fd table grew by ${during - before} with ${N} fd connections open`);
          await release(child);
          child = undefined;
          await waitFor(() => server.conns.size === 0, 'every connection to close');
          assert.ok(fdCount() - before <= 2, `fd table back to ${fdCount()} (was ${before})`);
          assert.equal(server.counts.bytes, N);
          assert.deepEqual(server.errors, []);
        } finally {
          if (child) await release(child);
          await server.close();
        }
      });
    }
  });
}
