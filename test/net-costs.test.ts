// What megapipe/net's Socket costs per connection and per received chunk. Memory: an accepted Socket that has done
// nothing but connect holds no state for what it has not used (held writes, a pending end or destroy, errors, cached
// addresses, the idle timeout, connect()'s target: made at first need), compared with node:net's — each side in a
// child process (a heap of its own): a server and a client of the module under test, one connection, a heap
// snapshot, the self size of every `Socket` object in it. Per chunk: bytes are pushed as they arrive, so Readable's
// read-ahead (a nextTick and a read(0) → _read() after every push) is not run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import * as mnet from '../src/net/index.js';

import { uringSkip, withTimeout } from './helpers.js';

const mnetUrl = new URL('../src/net/index.js', import.meta.url).href;

const BODY = (mod: string) => `
import * as net from ${JSON.stringify(mod)};
import { getHeapSnapshot } from 'node:v8';
import { once } from 'node:events';
let accepted;
const server = net.createServer((s) => { accepted = s; });
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const c = net.connect(server.address().port, '127.0.0.1');
await once(c, 'connect');
while (accepted === undefined) await new Promise((r) => setTimeout(r, 5));
// as ws does with every connection it takes
accepted.setTimeout(0);
accepted.setNoDelay(true);
const chunks = [];
for await (const x of getHeapSnapshot()) chunks.push(x);
const s = JSON.parse(chunks.join(''));
const f = s.snapshot.meta.node_fields, types = s.snapshot.meta.node_types[0], w = f.length;
const iT = f.indexOf('type'), iN = f.indexOf('name'), iS = f.indexOf('self_size');
const sockets = [], rare = [];
for (let i = 0; i < s.nodes.length; i += w) {
  if (types[s.nodes[i + iT]] !== 'object') continue;
  const name = s.strings[s.nodes[i + iN]];
  if (name === 'Socket') sockets.push(s.nodes[i + iS]);
  else if (name === 'Rare') rare.push(s.nodes[i + iS]);
}
console.log(JSON.stringify({ sockets, rare }));
c.destroy(); accepted.destroy(); server.close();
`;

/**
 * The self sizes of the `Socket` objects of a child holding one connection of `mod` (both ends), and of megapipe/net's
 * `Rare` objects (a Socket's state made at first need).
 */
async function socketSizes(mod: string): Promise<{ sockets: number[]; rare: number[] }> {
  const p = spawn(process.execPath, ['--input-type=module', '-e', BODY(mod)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => { out += d; });
  const [code] = await withTimeout(once(p, 'exit'), 30_000, 'the child') as [number];
  assert.equal(code, 0, 'the child exited with an error');
  return JSON.parse(out.trim().split('\n').pop()!) as { sockets: number[]; rare: number[] };
}

describe('megapipe/net memory per idle connection', { skip: uringSkip }, () => {
  it('an idle Socket of megapipe/net is at most 3/4 of node:net\'s in the JavaScript heap, setTimeout(0) included (no per-connection state it does not use)', async () => {
    const node = (await socketSizes('node:net')).sockets;
    const { sockets: mp, rare } = await socketSizes(mnetUrl);
    assert.equal(node.length, 2, `node:net's two Sockets: ${JSON.stringify(node)}`);
    assert.equal(mp.length, 2, `megapipe/net's two Sockets: ${JSON.stringify(mp)}`);
    // (node:net's Socket: 488 bytes on Node 20; megapipe/net's was 408 with every field in the object)
    assert.ok(Math.max(...mp) <= 0.75 * Math.min(...node), `megapipe/net Socket ${JSON.stringify(mp)} bytes against node:net's ${JSON.stringify(node)}`);
    // the client's (connect() keeps its target); the accepted one, its timeout turned off, has none
    assert.ok(rare.length <= 1, `${rare.length} Sockets made their rare state: ${JSON.stringify(rare)} bytes`);
  });
});

describe('megapipe/net work per received chunk', { skip: uringSkip }, () => {
  it('a received chunk does not call _read (no read-ahead per push); a paused, full socket still resumes', async () => {
    let reads = 0;
    let accepted: net.Socket | undefined;
    const server = mnet.createServer({}, (s) => {
      accepted = s as unknown as net.Socket;
      const r = s as unknown as { _read(n: number): void };
      const orig = r._read.bind(s);
      r._read = (n: number) => { reads++; orig(n); };
      s.on('data', (d: Buffer) => s.write(d.subarray(0, 1)));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    try {
      // 50 chunks, each sent after the echo of the one before: 50 reads on the server
      for (let i = 0; i < 50; i++) {
        const echoed = once(c, 'data');
        c.write(Buffer.alloc(100, i));
        await withTimeout(echoed, 10_000, `the echo of chunk ${i}`);
      }
      await new Promise((r) => setImmediate(r));
      assert.ok(reads <= 5, `_read was called ${reads} times for 50 received chunks`);
      // back-pressure still works: paused, the socket fills past its high-water mark; resumed, every byte arrives
      accepted!.removeAllListeners('data');
      accepted!.pause();
      const total = 4 * 1024 * 1024;
      let got = 0;
      c.write(Buffer.alloc(total, 7));
      await new Promise((r) => setTimeout(r, 200));
      const done = new Promise<void>((resolve) => accepted!.on('data', (d: Buffer) => { got += d.length; if (got >= total) resolve(); }));
      accepted!.resume();
      await withTimeout(done, 20_000, 'every byte after resume');
      assert.equal(got, total);
    } finally {
      c.destroy();
      accepted?.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
