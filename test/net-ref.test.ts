// ref/unref on megapipe/net, as node:net: an unref'd server, and unref'd sockets, let the process exit; a ref'd one
// keeps it alive. Each case runs in a child process, for node:net and megapipe/net alike.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

import { CHILD_NET_IMPLS, childNetEnv, withTimeout } from './helpers.js';


/** Runs `body` (with `net` bound to the module under test) in a child; its exit code, or 'alive' if still running 3 s
 * after it printed 'ready'. `expect` 'exit': a child that should exit is waited for (bounded: 30 s) however long it
 * takes (a loaded machine), not judged alive after 3 s. */
async function run(mod: string, body: string, expect: 'exit' | 'alive'): Promise<number | 'alive'> {
  const code = `import * as net from ${JSON.stringify(mod)};\n${body}\nconsole.log('ready');`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { env: childNetEnv(mod), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => { out += d; });
  const exited = once(p, 'exit').then(([c]) => c as number);
  // 'alive' is decided after the child said ready and 3 s passed without its exit — only where the child should stay:
  // a child that should exit may take longer than 3 s on a loaded machine, and is waited for
  let timer: NodeJS.Timeout | undefined;
  const alive = new Promise<'alive'>((resolve) => { timer = setInterval(() => { if (out.includes('ready')) { clearInterval(timer); timer = setTimeout(() => resolve('alive'), 3000); } }, 20); });
  let r: number | 'alive';
  try {
    r = await withTimeout(expect === 'exit' ? exited : Promise.race([exited, alive]), 30_000, 'the child');
  } catch (e) { p.kill(); throw e; } finally { clearInterval(timer); clearTimeout(timer); }
  if (r === 'alive') { p.kill(); await exited; }
  return r;
}

const LISTEN = `const s = net.createServer(() => {}); s.listen(0, '127.0.0.1');`;
const PAIR = `const s = net.createServer((c) => { c.unref(); c.resume(); }); s.listen(0, '127.0.0.1', () => { const c = net.connect(s.address().port, '127.0.0.1', () => { c.unref(); }); s.unref(); });`;

for (const [name, mod, skip] of CHILD_NET_IMPLS) {
  describe(`net ref/unref: ${name}`, { skip }, () => {
    it('a listening server keeps the process alive; unref() lets it exit; ref() again keeps it', async () => {
      assert.equal(await run(mod, LISTEN, 'alive'), 'alive');
      assert.equal(await run(mod, `${LISTEN} s.unref();`, 'exit'), 0);
      assert.equal(await run(mod, `${LISTEN} s.unref(); s.ref();`, 'alive'), 'alive');
    });
    it('unref\'d sockets and server: the process exits with a connection open', async () => {
      assert.equal(await run(mod, PAIR, 'exit'), 0);
    });
  });
}
