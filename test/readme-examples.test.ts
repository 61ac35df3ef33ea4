// The README's TypeScript examples, as a user would take them: each compiles under strict TypeScript against the
// package (imported as 'megapipe'), and each runs. The echo example must survive what a real server meets: its limits
// are made small (a 4-slot lwsocket table, 8 handles) so that MP_ERR_TABLE_FULL and MP_ERR_LIMIT are reached by a
// dozen connections; it must keep serving afterwards. Every echoed byte is verified.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { prng, randomBytes, uringSkip, withTimeout } from './helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = path.resolve(here, '../..');
// inside the package, so that `import … from 'megapipe'` resolves to this package (self-reference through "exports")
const outDir = path.join(root, 'dist', 'readme');

interface Example { name: string; code: string }

/** The ```ts blocks of README.md, named by a leading `// name.ts` comment or by their position. */
function examples(): Example[] {
  const md = readFileSync(path.join(root, 'README.md'), 'utf8');
  const out: Example[] = [];
  for (const m of md.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const code = m[1]!;
    const named = /^\/\/ ([\w-]+)\.ts\b/.exec(code);
    out.push({ name: named ? named[1]! : `example${out.length + 1}`, code });
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

/**
 * Sends `n` bytes; `settled` resolves once they all came back identical, or the connection ended; `result` resolves,
 * after `hold` (the connection kept open until then), with how many came back identical (all: n; -1: a byte differed).
 */
function echo(port: number, n: number, seed: number, hold?: Promise<void>): { settled: Promise<void>; result: Promise<number> } {
  const data = randomBytes(prng(seed), n);
  let settle!: () => void;
  const settled = new Promise<void>((r) => { settle = r; });
  const result = withTimeout(new Promise<number>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = 0, ok = true, done = false;
    const finish = () => { if (!done) { done = true; s.destroy(); settle(); resolve(ok ? got : -1); } };
    s.on('connect', () => s.write(data));
    s.on('data', (d: Buffer) => {
      if (!d.equals(data.subarray(got, got + d.length))) ok = false;
      got += d.length;
      if (got === n) { settle(); if (hold) void hold.then(finish); else finish(); }
    });
    s.on('end', finish);
    s.on('error', finish);
  }), 20000, 'an echo exchange');
  return { settled, result };
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

async function waitListening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (exited(child)) throw new Error(`the example exited (${child.exitCode ?? child.signalCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the example never listened on ${port}: ${log()}`);
}

function run(file: string): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [file], { cwd: outDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += String(d); });
  child.stderr!.on('data', (d) => { out += String(d); });
  return { child, log: () => out };
}

function stop(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGKILL'); });
}

describe('README examples', () => {
  const all = examples();
  before(() => mkdirSync(outDir, { recursive: true }));

  it('there are examples to check, and each compiles under strict TypeScript against the package', () => {
    assert.ok(all.length >= 4, `found ${all.length} examples`);
    const files = all.map((e) => { const f = path.join(outDir, `${e.name}.ts`); writeFileSync(f, e.code); return f; });
    const program = ts.createProgram(files, {
      strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext, types: ['node'], skipLibCheck: true,
    });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    assert.deepEqual(diags, []);
  });

  /** Writes example `name` as JavaScript, with `edit` applied to its source first. */
  const emit = (name: string, edit: (code: string) => string = (c) => c): string => {
    const ex = all.find((e) => e.name === name);
    assert.ok(ex, `no example named ${name}`);
    const js = ts.transpileModule(edit(ex!.code), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = path.join(outDir, `${name}.js`);
    writeFileSync(file, js);
    return file;
  };

  it('the echo server survives a full lwsocket table and running out of handles, and keeps serving', { skip: uringSkip }, async () => {
    const port = await freePort();
    const file = emit('example1', (c) => {
      assert.match(c, /createChannel\(\)/);
      assert.match(c, /port: 7000/);
      return c.replace('createChannel()', 'createChannel({ limits: { files: 4, maxHandles: 8 } })').replace('port: 7000', `port: ${port}`);
    });
    const { child, log } = run(file);
    try {
      await waitListening(port, child, log);
      // 12 connections held open at once: 4 lwsockets, then regular fds (table full), and beyond 7 connections (8
      // handles with the listener's) refused — each refused one is closed by the server
      let release!: () => void;
      const hold = new Promise<void>((r) => { release = r; });
      const conns = Array.from({ length: 12 }, (_, i) => echo(port, 4096, i, hold));
      await withTimeout(Promise.all(conns.map((c) => c.settled)), 20000, 'every connection echoed or ended');
      release();
      const got = await Promise.all(conns.map((c) => c.result));
      assert.ok(got.every((n) => n === 4096 || n === 0), `each connection was echoed in full or refused: ${got}`);
      assert.equal(got.filter((n) => n === 4096).length, 7, '7 served (8 handles, one is the listener)');
      assert.equal(child.exitCode, null, `the server is still running: ${log()}`);
      assert.match(log(), /MP_ERR_TABLE_FULL/);
      assert.match(log(), /MP_ERR_LIMIT/);
      // and it keeps serving, every byte (a connection that arrives before the server has seen the 12 go is refused
      // while its handles are all in use: try again, a bounded number of times)
      for (let i = 0; i < 3; i++) {
        let n = 0;
        for (let tries = 0; tries < 200 && n === 0; tries++) n = await echo(port, 100_000, 100 + i).result;
        assert.equal(n, 100_000);
      }
      assert.equal(child.exitCode, null, log());
    } finally { await stop(child); }
  });

  it('the Session example echoes', { skip: uringSkip }, async () => {
    const port = await freePort();
    const { child, log } = run(emit('example2', (c) => c.replace('port: 7000', `port: ${port}`)));
    try {
      await waitListening(port, child, log);
      for (let i = 0; i < 3; i++) assert.equal(await echo(port, 50_000, 200 + i).result, 50_000);
    } finally { await stop(child); }
  });

  it('the serve() example (worker.ts and main.ts) echoes on every worker, and stops on SIGTERM', async () => {
    const port = await freePort();
    emit('worker');
    const { child, log } = run(emit('main', (c) => c.replace('port: 7000', `port: ${port}`)));
    try {
      await waitListening(port, child, log);
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => echo(port, 30_000, 300 + i).result));
      assert.deepEqual(got, Array(8).fill(30_000));
      // serve() has resolved and the SIGTERM handler is installed once the example says so
      await withTimeout((async () => { while (!/serving on port/.test(log())) await new Promise((r) => child.stdout!.once('data', r)); })(), 15000, `the example's start message: ${log()}`);
      child.kill('SIGTERM');
      await withTimeout(new Promise<void>((r) => { if (exited(child)) r(); else child.once('exit', () => r()); }), 15000, `the server to exit after SIGTERM: ${log()}`);
      assert.equal(child.exitCode, 0, `exit code after SIGTERM: ${log()}`);
    } finally { await stop(child); }
  });
});
