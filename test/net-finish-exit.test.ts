// megapipe/net: 'finish' (end()'s callback) once every byte reached the kernel, as node:net's — so a program that
// exits on 'finish' has sent everything: the kernel delivers what it holds after the process is gone, the channel's
// queue would not be. A child writes 10 KB with end() and exits on 'finish'; the server must get all of it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { CHILD_NET_IMPLS, childNetEnv, withTimeout } from './helpers.js';

const N = 10_000;

for (const [name, mod, skip] of CHILD_NET_IMPLS) {
  describe(`exit on 'finish' after end(data): every byte arrives (${name})`, { skip }, () => {
    it('the server receives all of it', async () => {
      let got = 0;
      const done = new Promise<void>((resolve) => {
        const server = net.createServer((s) => {
          s.on('data', (d: Buffer) => { got += d.byteLength; });
          s.on('close', () => { server.close(); resolve(); });
          s.on('error', () => {});
        });
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as net.AddressInfo).port;
          const code = `const net = await import(${JSON.stringify(mod)});
            const s = net.connect({ port: ${port}, host: '127.0.0.1' });
            s.on('connect', () => { s.end(Buffer.alloc(${N}, 0x64)); s.on('finish', () => process.exit(0)); });`;
          spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'inherit', env: childNetEnv(mod) });
        });
      });
      await withTimeout(done, 30000, 'the connection to close');
      assert.equal(got, N, `bytes received before the child exited on 'finish'`);
    });
  });
}
