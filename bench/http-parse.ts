// megapipe-http's request parser alone: nanoseconds per request head for a load generator's request (wrk: request
// line + Host) and a browser's (seven header fields), each copied into a receive-pool-like buffer first, as the
// server gets them. `--baseline DIR` also runs the parser of another build (DIR = its dist directory) interleaved
// with this one, for a change measured side by side with its baseline:
//   node dist/bench/http-parse.js [--baseline /path/to/other/dist] [--rounds 5]
import { pathToFileURL } from 'node:url';
import * as path from 'node:path';
import type { ParserEvents, ParserLimits, RequestParser as Parser } from '../apps/http/parser.js';
import { fmtSummary, summarize } from './lib/stats.js';

interface ParserModule {
  RequestParser: new (limits: ParserLimits, ev: ParserEvents) => Parser;
  DEFAULT_LIMITS: ParserLimits;
}

const WRK = ['/img/photo.jpg', '/css/base.css', '/js/vendor.js', '/favicon.ico'].map((u) => Buffer.from(`GET ${u} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n`));
const BROWSER = [Buffer.from(
  'GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 ' +
  '(KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
  'Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\n\r\n',
)];

function usage(): never {
  process.stdout.write('usage: node dist/bench/http-parse.js [--baseline DIST_DIR] [--rounds N]\n');
  process.exit(2);
}

function args(): { baseline: string | null; rounds: number } {
  const a = process.argv.slice(2);
  let baseline: string | null = null, rounds = 5;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--baseline' && a[i + 1]) baseline = path.resolve(a[++i]!);
    else if (a[i] === '--rounds' && a[i + 1]) { rounds = Number(a[++i]); if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) usage(); }
    else usage();
  }
  return { baseline, rounds };
}

/** ns per head: `n` heads, taken in turn from `list`, each copied into a pool buffer and parsed. */
function measure(m: ParserModule, list: Buffer[], n: number): number {
  let heads = 0;
  const ev: ParserEvents = {
    onHead() { heads++; }, onBody() {}, onComplete() {},
    onError(status, reason) { throw new Error(`parse error ${status}: ${reason}`); },
  };
  const p = new m.RequestParser(m.DEFAULT_LIMITS, ev);
  const pool = Buffer.alloc(65536);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = list[i % list.length]!;
    r.copy(pool, 1000);
    p.execute(pool, 1000, r.length);
  }
  const ns = Number(process.hrtime.bigint() - t) / n;
  if (heads !== n) throw new Error(`parsed ${heads} heads of ${n}`);
  return ns;
}

async function main(): Promise<void> {
  const { baseline, rounds } = args();
  const here = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const builds: { name: string; m: ParserModule }[] = [{ name: 'this build', m: await import(pathToFileURL(path.join(here, 'apps/http/parser.js')).href) as ParserModule }];
  if (baseline) builds.push({ name: 'baseline', m: await import(pathToFileURL(path.join(baseline, 'apps/http/parser.js')).href) as ParserModule });
  const res = builds.map(() => ({ wrk: [] as number[], browser: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    builds.forEach((b, k) => {
      res[k]!.wrk.push(measure(b.m, WRK, 1_000_000));
      res[k]!.browser.push(measure(b.m, BROWSER, 300_000));
    });
  }
  process.stdout.write(`request parser, ns per head: median (min–max) of ${rounds} rounds, interleaved\n`);
  for (const [k, b] of builds.entries()) {
    const wrk = fmtSummary(summarize(res[k]!.wrk)), browser = fmtSummary(summarize(res[k]!.browser));
    process.stdout.write(`  ${b.name.padEnd(10)}  wrk-like (${WRK[0]!.length} B) ${wrk}   browser-like (${BROWSER[0]!.length} B) ${browser}\n`);
  }
}

await main();
