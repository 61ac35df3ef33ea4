// A real browser against megapipe-http: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// loads a page with a stylesheet, a script and an image, and the test checks what rendered. (The project compiles
// without the DOM lib, so the in-page callbacks reach the browser's globals through an untyped globalThis.)

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { serveStatic } from '../apps/http/static.js';
import type { Handler } from '../apps/http/handlers.js';
import { SHIPPED_TRANSPORTS, skipTransport, startApp } from './http-helpers.test.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = !fs.existsSync(CHROMIUM) && `${CHROMIUM} is not installed (apt-get install chromium)`;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** An RGB PNG of w×h pixels, each (r, g, b). */
function png(w: number, h: number, rgb: [number, number, number]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + 3 * w);
    for (let x = 0; x < w; x++) raw.set(rgb, row + 1 + 3 * x);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// over io_uring channels (what megapipe-http ships on) and over node:net
for (const transport of SHIPPED_TRANSPORTS) {
test(`over ${transport}: headless Chromium renders a page with stylesheet, script and image from megapipe-http`, { skip: skip || skipTransport(transport) }, async () => {
  const { chromium } = await import('playwright-core');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-browser-'));
  const root = path.join(tmp, 'www');
  fs.mkdirSync(path.join(root, 'css'), { recursive: true });
  fs.mkdirSync(path.join(root, 'js'));
  fs.mkdirSync(path.join(root, 'img'));
  fs.writeFileSync(
    path.join(root, 'index.html'),
    `<!doctype html>
<html><head><meta charset="utf-8"><title>megapipe-http</title>
<link rel="stylesheet" href="/css/site.css">
<script src="/js/app.js" defer></script></head>
<body><h1 id="title">Served by megapipe-http</h1>
<p id="out">script has not run</p><p id="api">api not called</p>
<img id="img" src="/img/pixel.png" alt="pixel"></body></html>`,
  );
  fs.writeFileSync(path.join(root, 'css', 'site.css'), '#title { color: rgb(10, 20, 30); font-size: 33px; }\nbody { background: rgb(250, 240, 230); }\n');
  fs.writeFileSync(
    path.join(root, 'js', 'app.js'),
    `document.getElementById('out').textContent = 'script ran: ' + (40 + 2);
fetch('/api/sum?a=5&b=6').then((r) => r.json()).then((j) => { document.getElementById('api').textContent = 'api says ' + j.sum; });
`,
  );
  fs.writeFileSync(path.join(root, 'img', 'pixel.png'), png(7, 5, [200, 30, 40]));
  const seen: string[] = [];
  const api: Handler = (req, res) => {
    seen.push(req.path);
    if (req.path === '/api/sum') return res.json({ sum: Number(req.query.get('a')) + Number(req.query.get('b')) });
  };
  const srv = await startApp({ handler: [api, serveStatic(root)] }, transport);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const statuses: Record<string, number> = {};
    page.on('response', (r) => {
      statuses[new URL(r.url()).pathname] = r.status();
    });
    const resp = await page.goto(`http://127.0.0.1:${srv.port}/`, { waitUntil: 'load' });
    assert.equal(resp?.status(), 200);
    await page.waitForFunction(() => (globalThis as any).document.getElementById('api')?.textContent === 'api says 11', undefined, { timeout: 15_000 });
    const rendered = await page.evaluate(() => {
      const { document, getComputedStyle } = globalThis as any;
      const t = document.getElementById('title');
      const img = document.getElementById('img');
      const cs = getComputedStyle(t);
      return {
        color: cs.color,
        fontSize: cs.fontSize,
        background: getComputedStyle(document.body).backgroundColor,
        out: document.getElementById('out').textContent,
        imgComplete: img.complete,
        w: img.naturalWidth,
        h: img.naturalHeight,
        title: document.title,
      };
    });
    assert.deepEqual(rendered, {
      color: 'rgb(10, 20, 30)', fontSize: '33px', background: 'rgb(250, 240, 230)', out: 'script ran: 42',
      imgComplete: true, w: 7, h: 5, title: 'megapipe-http',
    });
    // the image's pixels decoded as sent
    const pixel = await page.evaluate((): number[] => {
      const { document } = globalThis as any;
      const img = document.getElementById('img');
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return Array.from(ctx.getImageData(3, 2, 1, 1).data);
    });
    assert.deepEqual(pixel, [200, 30, 40, 255]);
    for (const p of ['/css/site.css', '/js/app.js', '/img/pixel.png', '/api/sum']) assert.equal(statuses[p], 200, p);
    if (process.env.MEGAPIPE_HTTP_SCREENSHOT) await page.screenshot({ path: process.env.MEGAPIPE_HTTP_SCREENSHOT });
    // a reload revalidates with the validators the server sent (answered 304 or from cache, and still renders)
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => (globalThis as any).document.getElementById('out')?.textContent === 'script ran: 42', undefined, { timeout: 15_000 });
    assert.equal(
      await page.evaluate((): string => {
        const { document, getComputedStyle } = globalThis as any;
        return getComputedStyle(document.getElementById('title')).color;
      }),
      'rgb(10, 20, 30)',
    );
    assert.ok(seen.filter((p) => p === '/api/sum').length >= 2);
  } finally {
    await browser.close();
    await srv.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
}
