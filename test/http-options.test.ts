// megapipe-http's options are checked at start, each error naming the option: unknown keys, wrong types and ranges
// (createHttpApp, serveStatic, startServer, memcached's startServer); a static root that does not exist fails at
// start; `handler` means a function (createHttpApp) and startServer takes a module as `handlerModule`;
// HttpError(422, message) answers with its message as the body.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { MegapipeError } from '../src/index.js';
import { createHttpApp } from '../apps/http/app.js';
import { serveStatic } from '../apps/http/static.js';
import { startServer } from '../apps/http/cli.js';
import { HttpError } from '../apps/http/status.js';
import { startServer as startMemcached } from '../apps/memcached/server.js';
import { exchange, startApp } from './http-helpers.test.js';

let tmp = '';
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-options-')); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const naming = (Kind: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, word: string) => (e: Error) => {
  assert.ok(e instanceof Kind, `${Kind.name} expected, got ${e?.constructor?.name}: ${e?.message}`);
  assert.ok(e.message.includes(word), `"${e.message}" names ${word}`);
  return true;
};

test('createHttpApp: unknown keys, wrong types and ranges throw naming the option', () => {
  assert.throws(() => createHttpApp({ maxBodySize: '1mb' } as never), naming(TypeError, 'maxBodySize'));
  assert.throws(() => createHttpApp({ keepAliveTimeout: -5 }), naming(RangeError, 'keepAliveTimeout'));
  assert.throws(() => createHttpApp({ maxPipeline: 0 }), naming(RangeError, 'maxPipeline'));
  assert.throws(() => createHttpApp({ headerTimeout: 1.5 }), naming(RangeError, 'headerTimeout'));
  assert.throws(() => createHttpApp({ keepAliveTimeOut: 5 } as never), naming(TypeError, 'keepAliveTimeOut'));
  assert.throws(() => createHttpApp({ handler: 'handler.js' } as never), naming(TypeError, 'handler'));
  assert.throws(() => createHttpApp({ onError: 'log' } as never), naming(TypeError, 'onError'));
  assert.throws(() => createHttpApp({ bodyMinRate: -1 }), naming(RangeError, 'bodyMinRate'));
  const app = createHttpApp({ maxBodySize: 0, maxRequestsPerConnection: 0, keepAliveTimeout: 1 });
  app.close();
});

test('serveStatic: a root that does not exist, or is a file, fails at once with ENOENT / ENOTDIR', () => {
  const missing = path.join(tmp, 'no-such-dir');
  assert.throws(() => serveStatic(missing), (e: Error) => e instanceof MegapipeError && e.code === 'ENOENT' && e.message.includes(missing));
  const file = path.join(tmp, 'file.txt');
  fs.writeFileSync(file, 'x');
  assert.throws(() => serveStatic(file), (e: Error) => e instanceof MegapipeError && e.code === 'ENOTDIR' && e.message.includes(file));
  assert.throws(() => serveStatic(tmp, { fallThrough: true } as never), naming(TypeError, 'fallThrough'));
  assert.throws(() => serveStatic(tmp, { dotfiles: 'ignore' } as never), naming(TypeError, 'dotfiles'));
});

test('startServer: checked before anything starts; handler is refused for handlerModule', async () => {
  await assert.rejects(startServer({ root: path.join(tmp, 'missing'), port: 0 }), (e: Error) => e instanceof MegapipeError && e.code === 'ENOENT');
  await assert.rejects(startServer({ handler: () => {}, port: 0 } as never), naming(TypeError, 'handlerModule'));
  await assert.rejects(startServer({ root: tmp, port: 0, bogus: 1 } as never), naming(TypeError, 'bogus'));
  await assert.rejects(startServer({ root: tmp, port: 0, options: { maxBodySize: '1mb' as never } }), naming(TypeError, 'maxBodySize'));
  await assert.rejects(startServer({ root: tmp, port: 0, options: { keepAliveTimeout: -5 } }), naming(RangeError, 'keepAliveTimeout'));
});

test('startServer({handlerModule}) serves the module\'s handler (node:net transport)', async () => {
  const mod = path.join(tmp, 'handler.mjs');
  fs.writeFileSync(mod, "export default (req, res) => res.send('from the module\\n');\n");
  const srv = await startServer({ handlerModule: mod, port: 0, transport: 'net' });
  try {
    const r = await exchange(srv.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'from the module\n');
    r.client.destroy();
  } finally { await srv.close(500); }
});

test('HttpError(422, message) sends its message as the body; without one, the status line text', async () => {
  const srv = await startApp({
    handler: (req) => {
      if (req.path === '/n') throw new HttpError(422, 'n must be a number');
      throw new HttpError(403);
    },
  });
  try {
    const a = await exchange(srv.port, 'GET /n HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(a.status, 422);
    assert.equal(a.body.toString(), 'n must be a number');
    a.client.destroy();
    const b = await exchange(srv.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(b.status, 403);
    assert.equal(b.body.toString(), '403 Forbidden\n');
    b.client.destroy();
  } finally { await srv.close(); }
});

test('memcached startServer: unknown keys and wrong types throw naming the option', async () => {
  await assert.rejects(startMemcached({ transport: 'net', port: 0, threds: 2 } as never), naming(TypeError, 'threds'));
  await assert.rejects(startMemcached({ transport: 'net', port: 0, memoryMb: '64' } as never), naming(TypeError, 'memoryMb'));
  await assert.rejects(startMemcached({ transport: 'net', port: 70000 }), naming(RangeError, 'port'));
});
