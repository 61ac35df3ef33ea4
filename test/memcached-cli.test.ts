// The megapipe-memcached command line: memcached's options, "listening on HOST:PORT", exit codes, signals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RawClient, freePort } from './memcached-testkit.js';
import { parseArgs } from '../apps/memcached/cli.js';

const CLI = fileURLToPath(new URL('../apps/memcached/cli.js', import.meta.url));

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * Runs the CLI with `args` until it exits. With `onListening`, that is called once "listening on" is printed, and the
 * result waits for it too: a failure inside it fails the run even after the process exited, and a CLI that exits
 * without ever listening fails the run instead of passing without the checks.
 */
function run(args: string[], onListening?: (port: number, proc: ReturnType<typeof spawn>) => Promise<void>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    let checks: Promise<void> | undefined;
    const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^listening on [^\s]+:(\d+)$/m.exec(stdout);
      if (m && !checks && onListening) {
        checks = onListening(Number(m[1]), proc).catch((e) => { proc.kill('SIGKILL'); throw e; });
        checks.catch(() => {}); // observed below, once the process is gone
      }
    });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    proc.on('exit', (code, signal) => {
      clearTimeout(killer);
      const result = { code, signal, stdout, stderr };
      if (!onListening) { resolve(result); return; }
      if (!checks) { reject(new Error(`exited (${code ?? signal}) without printing "listening on": ${stderr}`)); return; }
      checks.then(() => resolve(result), reject);
    });
  });
}

describe('megapipe-memcached CLI', () => {
  it('parses memcached-style options', () => {
    assert.deepEqual(parseArgs(['-p', '1234', '-l', '0.0.0.0', '-t', '2', '-m', '128', '-c', '10', '-I', '2m', '-U', '0', '-vv']),
      { verbosity: 2, port: 1234, host: '0.0.0.0', threads: 2, memoryMb: 128, maxConns: 10, itemSizeMax: 2 * 1024 * 1024 });
    assert.deepEqual(parseArgs(['--port=99', '--memory-limit', '8', '--max-item-size=512k', '-p7']),
      { verbosity: 0, port: 7, memoryMb: 8, itemSizeMax: 512 * 1024 });
    assert.deepEqual(parseArgs(['-o', 'idle_timeout=30']), { verbosity: 0, idleTimeout: 30 });
    assert.deepEqual(parseArgs(['--extended=idle_timeout=0', '-oidle_timeout=7']), { verbosity: 0, idleTimeout: 7 });
    assert.deepEqual(parseArgs(['-B', 'binary', '-F', '-A']), { verbosity: 0, protocol: 'binary', flushEnabled: false, shutdownEnabled: true });
    assert.deepEqual(parseArgs(['--protocol=ascii', '--disable-flush-all', '--enable-shutdown']), { verbosity: 0, protocol: 'ascii', flushEnabled: false, shutdownEnabled: true });
    assert.throws(() => parseArgs(['-B', 'json']), /Invalid value for binding protocol/);
  });

  it('-A: the shutdown command stops the server (exit 0); without -A it is refused; -F refuses flush_all', async () => {
    const r = await run(['-p', '0', '-t', '1', '-A', '-F'], async (p) => {
      const c = await RawClient.connect(p);
      assert.equal(await c.call('flush_all\r\n'), 'CLIENT_ERROR flush_all not allowed\r\n');
      assert.match(await c.call('stats settings\r\n', 'END\r\n'), /^STAT flush_enabled no\r$/m);
      assert.equal(await c.call('shutdown now\r\n'), 'CLIENT_ERROR invalid shutdown mode\r\n');
      c.send('shutdown\r\n');
      assert.equal(await c.waitClosed(10_000), true, 'the connection closes');
    });
    assert.equal(r.code, 0, r.stderr);
    const off = await run(['-p', '0', '-t', '1'], async (p, proc) => {
      const c = await RawClient.connect(p);
      assert.equal(await c.call('shutdown\r\n'), 'ERROR: shutdown not enabled\r\n');
      c.close();
      proc.kill('SIGTERM');
    });
    assert.equal(off.code, 0, off.stderr);
  });

  it('closes idle connections with -o idle_timeout and reports it in stats settings', async () => {
    const r = await run(['-p', '0', '-t', '1', '-o', 'idle_timeout=1'], async (p, proc) => {
      const c = await RawClient.connect(p);
      assert.match(await c.call('stats settings\r\n', 'END\r\n'), /^STAT idle_timeout 1\r$/m);
      // memcached's rule: closed once its last command is more than 1 s (of its seconds clock) old
      assert.equal(await c.waitClosed(15_000), true, 'the idle connection is closed');
      const d = await RawClient.connect(p);
      assert.match(await d.call('stats\r\n', 'END\r\n'), /^STAT idle_kicks 1\r$/m);
      d.close();
      proc.kill('SIGTERM');
    });
    assert.equal(r.code, 0, r.stderr);
  });

  it('serves, prints "listening on", stops on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const r = await run(['-p', String(port), '-m', '8', '-U', '0'], async (p, proc) => {
      assert.equal(p, port);
      const c = await RawClient.connect(p);
      assert.equal(await c.call('set cli 0 0 2\r\nok\r\n'), 'STORED\r\n');
      assert.equal(await c.call('get cli\r\n', 'END\r\n'), 'VALUE cli 0 2\r\nok\r\nEND\r\n');
      assert.match(await c.call('stats settings\r\n', 'END\r\n'), /STAT maxbytes 8388608\r\n/);
      c.close();
      proc.kill('SIGTERM');
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `listening on 127.0.0.1:${port}\n`);
  });

  it('stops on SIGINT with exit 0, even with a client connected', async () => {
    const r = await run(['-p', '0'], async (p, proc) => {
      const c = await RawClient.connect(p);
      assert.equal(await c.call('version\r\n'), 'VERSION 1.6.18\r\n');
      proc.kill('SIGINT');
      assert.equal(await c.waitClosed(10_000), true);
    });
    assert.equal(r.code, 0, r.stderr);
  });

  it('exits 64 with a clear message on unsupported options', async () => {
    for (const args of [['-d'], ['--daemon'], ['-U', '11211'], ['-p', 'x'], ['-I', '600m', '-m', '64'], ['-I', '10'], ['stray'],
      ['-o', 'idle_timeout=x'], ['-o', 'idle_timeout'], ['-o', 'lru_crawler'], ['-o']]) {
      const r = await run(args);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^megapipe-memcached: .+/, args.join(' '));
    }
    const udp = await run(['-U', '1']);
    assert.match(udp.stderr, /UDP is not supported/);
    const big = await run(['-I', '40m', '-m', '64']);
    assert.match(big.stderr, /Cannot set item size limit higher than 1\/2 of memory max/);
  });

  it('prints help and version', async () => {
    assert.match((await run(['-h'])).stdout, /-p, --port=<num>/);
    // megapipe's version (package.json); the protocol's `version` command answers memcached's (above)
    assert.match((await run(['-V'])).stdout, /^megapipe-memcached 0\.1\.0\n$/);
  });
});
