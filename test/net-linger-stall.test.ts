// megapipe/net: a Socket destroyed with bytes still queued closes once they are sent — or, when its peer takes none of
// them for bounds.destroyDrainStallMs, drops them (as the kernel gives up on an orphaned socket whose peer never
// reads). A process whose last socket was destroyed that way must therefore end, not linger forever.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { CHILD_NET_IMPLS, withTimeout } from './helpers.js';
import { bounds } from '../src/index.js';

// megapipe/net on io_uring (the lingering close is the channel's)
const [, mnetUrl, skip] = CHILD_NET_IMPLS[1];

describe('megapipe/net: a destroyed socket whose peer never reads lets the process end', { skip }, () => {
  it(`the child exits within destroyDrainStallMs (${bounds.destroyDrainStallMs} ms) and a margin`, async () => {
    const peers: net.Socket[] = [];
    const server = net.createServer((s) => { peers.push(s); s.pause(); });   // never reads
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as net.AddressInfo).port;
    const code = `const net = await import(${JSON.stringify(mnetUrl)});
      const s = net.connect({ port: ${port}, host: '127.0.0.1' });
      s.on('error', () => {});
      s.on('connect', () => {
        const b = Buffer.alloc(1 << 20, 0x6c);
        for (let i = 0; i < 32; i++) s.write(b);   // 32 MiB: far more than the kernels hold
        setTimeout(() => { s.destroy(); console.log('destroyed'); }, 500);
      });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += String(d); });
    try {
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      const code_ = await withTimeout(exited, bounds.destroyDrainStallMs + 20_000, 'the child to exit');
      assert.equal(code_, 0);
      assert.match(out, /destroyed/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const p of peers) p.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
