// An unref()'d socket with writes still pending, on node:net and on megapipe/net alike: node:net's write request keeps
// the event loop alive until the kernel has its bytes, so `sock.write(big); sock.unref()` delivers every byte before
// the process exits. Each case runs in a child process (the writer) connected to a node:net server in this process
// (the reader), which takes nothing for a while (so the kernel cannot hold the whole write), then reads it all and
// checks every byte; the child must exit by itself, with code 0. An unref'd idle socket must still let it exit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';

import { CHILD_NET_IMPLS, childNetEnv, withTimeout } from './helpers.js';


// larger than the kernel's send and receive buffers together (loopback, a reader that takes nothing yet)
const TOTAL = 24 * 1024 * 1024;
// how long the reader takes nothing before reading
const PAUSE_MS = 1500;
// a child that has nothing left to do must have exited by then (node:net's exits at once)
const EXIT_BOUND_MS = 10_000;

// The seeded pattern the child writes (the same function, as source, runs in the child).
const PATTERN_SRC = `function pattern(n) {
  const b = Buffer.allocUnsafe(n), w = new Uint32Array(b.buffer, b.byteOffset, n >>> 2);
  let x = 0x9e3779b9;
  for (let i = 0; i < w.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; w[i] = x >>> 0; }
  return b;
}`;
const pattern = new Function(`${PATTERN_SRC}; return pattern;`)() as (n: number) => Buffer;
const expectedDigest = createHash('sha256').update(pattern(TOTAL)).digest('hex');

interface Outcome { bytes: number; digest: string; code: number | null; signal: string | null }

/**
 * Runs `body` in a child (with `net` the module under test, `port` this process's server, `big` the pattern and
 * `host`); the server reads after `readAfterMs`, ends its side once TOTAL bytes came if `serverEnds` (a ref'd socket
 * then closes: otherwise the child's exit is what ends the connection), and waits for the child's EOF. Resolves with
 * what arrived and how the child exited.
 */
async function run(mod: string, body: string, { readAfterMs = PAUSE_MS, serverEnds = false } = {}): Promise<Outcome> {
  const hash = createHash('sha256');
  let bytes = 0;
  const server = net.createServer();
  const got = new Promise<void>((resolve, reject) => {
    server.once('connection', (c) => {
      c.pause();
      c.on('error', reject);
      setTimeout(() => c.resume(), readAfterMs);
      c.on('data', (d: Buffer) => {
        hash.update(d);
        const before = bytes;
        bytes += d.length;
        if (serverEnds && before < TOTAL && bytes >= TOTAL) c.end();
      });
      c.on('end', () => { c.end(); resolve(); });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const code = `import * as net from ${JSON.stringify(mod)};\n${PATTERN_SRC}\nconst port = ${port}, host = '127.0.0.1';\nconst big = pattern(${TOTAL});\n${body}`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { env: childNetEnv(mod), stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = once(p, 'exit') as Promise<[number | null, string | null]>;
  try {
    const [[exitCode, signal]] = await Promise.all([
      withTimeout(exited, PAUSE_MS + EXIT_BOUND_MS, 'the child to exit by itself'),
      withTimeout(got, PAUSE_MS + EXIT_BOUND_MS, 'the child\'s EOF'),
    ]);
    return { bytes, digest: hash.digest('hex'), code: exitCode, signal };
  } finally {
    if (p.exitCode === null && p.signalCode === null) { p.kill('SIGKILL'); await exited; }
    server.close();
  }
}

/**
 * As run(), with the child the server: `body` (with `net`, `big` and `host`) listens on `s` and this process connects
 * to it (the child prints its port), pauses PAUSE_MS, then reads until EOF.
 */
async function runServer(mod: string, body: string): Promise<Outcome> {
  const code = `import * as net from ${JSON.stringify(mod)};\n${PATTERN_SRC}\nconst host = '127.0.0.1';\nconst big = pattern(${TOTAL});\n${body}\ns.on('listening', () => console.log('port', s.address().port));`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { env: childNetEnv(mod), stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(p, 'exit') as Promise<[number | null, string | null]>;
  try {
    let out = '';
    p.stdout!.setEncoding('utf8');
    const port = await withTimeout(new Promise<number>((resolve) => p.stdout!.on('data', (d: string) => {
      out += d;
      const m = /port (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    })), 30_000, 'the child\'s port');
    const hash = createHash('sha256');
    let bytes = 0;
    const c = net.connect(port, '127.0.0.1');
    c.pause();
    setTimeout(() => c.resume(), PAUSE_MS);
    c.on('data', (d: Buffer) => { hash.update(d); bytes += d.length; });
    const [[exitCode, signal]] = await Promise.all([
      withTimeout(exited, PAUSE_MS + EXIT_BOUND_MS, 'the child to exit by itself'),
      withTimeout(once(c, 'end'), PAUSE_MS + EXIT_BOUND_MS, 'the child\'s EOF'),
    ]);
    c.destroy();
    return { bytes, digest: hash.digest('hex'), code: exitCode, signal };
  } finally {
    if (p.exitCode === null && p.signalCode === null) { p.kill('SIGKILL'); await exited; }
  }
}

function assertDelivered(o: Outcome): void {
  assert.equal(o.bytes, TOTAL, 'every byte written reached the peer');
  assert.equal(o.digest, expectedDigest, 'the bytes are the ones written');
  assert.deepEqual([o.code, o.signal], [0, null], 'the child exited by itself');
}

for (const [name, mod, skip] of CHILD_NET_IMPLS) {
  describe(`net unref with writes pending: ${name}`, { skip, timeout: 60_000 }, () => {
    it('write() then unref(): every byte is delivered before the process exits', async () => {
      assertDelivered(await run(mod, `const c = net.connect(port, host, () => { c.write(big); c.unref(); });`));
    });
    it('unref() then write(), once connected', async () => {
      assertDelivered(await run(mod, `const c = net.connect(port, host, () => { c.unref(); c.write(big); });`));
    });
    it('unref() and write() while connecting', async () => {
      assertDelivered(await run(mod, `const c = net.connect(port, host); c.unref(); c.write(big);`));
    });
    it('written in pieces (the Writable holds some), unref()\'d', async () => {
      assertDelivered(await run(mod, `const c = net.connect(port, host, () => {
        c.unref();
        for (let i = 0; i < big.length; i += 1 << 20) c.write(big.subarray(i, i + (1 << 20)));
      });`));
    });
    it('unref() then ref(): the same outcome (the peer\'s end closes it)', async () => {
      assertDelivered(await run(mod, `const c = net.connect(port, host, () => { c.write(big); c.unref(); c.ref(); });`, { serverEnds: true }));
    });
    it('the writes done, the unref\'d socket lets the process go again', async () => {
      // the child keeps only its open, unref'd socket once the write is done (and a ref'd timer that outlives the
      // transfer): it must exit once that fires, with the connection open
      assertDelivered(await run(mod, `const c = net.connect(port, host, () => {
        c.write(big, () => setTimeout(() => {}, 500)); c.unref();
      });`, { readAfterMs: 0 }));
    });
    it('an accepted socket: write() then unref() (the server closed)', async () => {
      assertDelivered(await runServer(mod, `const s = net.createServer((c) => { c.write(big); c.unref(); s.close(); }); s.listen(0, host);`));
    });
    it('write(), unref(), destroy(): the child still exits by itself, and what arrives is what was written', async () => {
      // node:net delivers what the kernel held at destroy() (its write request is cancelled); megapipe/net's
      // lingering close sends what the channel had queued too (linger.ts): either way a prefix of the bytes, and an exit
      const o = await run(mod, `const c = net.connect(port, host, () => { c.on('error', () => {}); c.write(big); c.unref(); c.destroy(); });`);
      assert.ok(o.bytes > 0 && o.bytes <= TOTAL, `${o.bytes} bytes`);
      assert.equal(o.digest, createHash('sha256').update(pattern(TOTAL).subarray(0, o.bytes)).digest('hex'));
      assert.deepEqual([o.code, o.signal], [0, null]);
    });
    it('an unref\'d idle socket lets the process exit at once', async () => {
      const o = await run(mod, `const c = net.connect(port, host, () => { c.unref(); });`, { readAfterMs: 0 });
      assert.deepEqual([o.bytes, o.code, o.signal], [0, 0, null]);
    });
  });
}
