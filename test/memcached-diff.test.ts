// Differential test: the same byte sequences (valid commands, edge cases, bad input) go to Debian's memcached and to
// ours; the replies must be byte-identical, including CAS values (both servers start fresh and see the same
// command sequence, so their CAS counters move in step) and whether the connection was closed. Run on each
// transport (io_uring channels under serve(), then node:net), each against a fresh reference server.
//
// Deliberate differences from 1.6.18 (this server follows today's memcached, 1.6.4x, there; memcached-meta-new.test.ts
// tests them), kept out of the compared scripts:
//  - meta's E(token) flag (a changed item's new CAS) on mg/ms/md/ma: 1.6.18 answers "CLIENT_ERROR invalid flag";
//  - md's x flag (drop the value, keep the item): 1.6.18 answers "CLIENT_ERROR invalid or duplicate flag";
//  - ms's s flag returns the stored size (" s<n>"): 1.6.18 accepts and ignores it;
//  - ms's N(token) in append mode (MA, MP) stores the value on a miss: 1.6.18 ignores N there (NS);
//  - binary protocol connections (memcached-binary.test.ts compares those with memcached -B binary).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VERSION } from '../apps/memcached/app.js';
import { exchange, show, type Chunk, type ExchangeOptions } from './memcached-testkit.js';
import { TRANSPORTS, referencePair, transportLabel, transportSkip } from './memcached-transports.js';

interface Case {
  name: string;
  chunks: Chunk[];
  /** No "mn" sentinel (the connection is expected to close, or stays in a data state). */
  noSentinel?: boolean;
  gapMs?: number;
  /** Rewrite replies before comparing (fields that legitimately differ, e.g. slab class ids). */
  normalize?: (s: string) => string;
}

const K250 = 'k'.repeat(250);
const K251 = 'k'.repeat(251);
const noMeta = (s: string) => s.replace(/ cls=\d+ size=\d+/g, ' cls=? size=?').replace(/ la=\d+/g, ' la=?');
const noLast = (s: string) => s.replace(/ l\d+/g, ' l?');

// memcached's limit: 48 (header) + key + 1 + value + 2 + 8 (CAS) [+ 4 if flags] <= 1 MiB
const maxVal = (nkey: number, flags: boolean) => 1024 * 1024 - 48 - nkey - 1 - 2 - 8 - (flags ? 4 : 0);

const cases: Case[] = [
  // ---- basics
  { name: 'version', chunks: ['version\r\n', 'version extra tokens\r\n'] },
  { name: 'set/get', chunks: ['set a 0 0 1\r\na\r\nget a\r\nget a a\r\nget nosuch a nosuch\r\n'] },
  { name: 'gets', chunks: ['set b 5 0 3\r\nbbb\r\ngets b\r\ngets b a\r\n'] },
  { name: 'flags range', chunks: ['set f1 4294967295 0 1\r\nx\r\nset f2 4294967296 0 1\r\ny\r\nset f3 -1 0 1\r\nz\r\nset f4 -0 0 1\r\nw\r\nget f1 f2 f3 f4\r\n'] },
  { name: 'number syntax', chunks: ['set n1 +7 0 1\r\na\r\nset n2 0 0 01\r\nb\r\nset n3 0 0 1x\r\nset n4 0x1 0 1\r\nc\r\nset n5 0 4294967296 1\r\nd\r\nset n6 0 0 4294967297\r\ne\r\nget n1 n2 n3 n4 n5 n6\r\n'] },
  { name: 'bad length', chunks: ['set bl 0 0 -1\r\nset bl 0 0 abc\r\nset bl 0 0\r\nset bl 0 0 1 noreply extra\r\nset bl 0 0 2147483646\r\n', 'x'.repeat(10), '\r\n'] },
  { name: 'bad data chunk (long)', chunks: ['set dc 0 0 1\r\nab\r\nget dc\r\n'] },
  { name: 'bad data chunk (short)', chunks: ['set dc 0 0 5\r\nab\r\n\r\nget dc\r\n'] },
  { name: 'bad data chunk noreply', chunks: ['set dc 0 0 3 noreply\r\nabcde\r\nget dc\r\n'] },
  { name: 'noreply', chunks: ['set nr 0 0 1 noreply\r\n1\r\nadd nr 0 0 1 noreply\r\n2\r\nreplace nr 0 0 1 noreply\r\n3\r\nappend nr 0 0 1 noreply\r\n4\r\nprepend nr 0 0 1 noreply\r\n5\r\nincr nr 1 noreply\r\ndecr nr 1 noreply\r\ntouch nr 0 noreply\r\nget nr\r\ndelete nr noreply\r\nget nr\r\nset nr 0 0 x noreply\r\n'] },
  { name: 'add/replace', chunks: ['add ar 1 0 1\r\na\r\nadd ar 2 0 1\r\nb\r\nreplace ar 3 0 1\r\nc\r\nreplace nosuch 0 0 1\r\nd\r\nget ar nosuch\r\n'] },
  { name: 'append/prepend', chunks: ['append ap 0 0 1\r\nx\r\nprepend ap 0 0 1\r\nx\r\nset ap 7 0 3\r\nmid\r\nappend ap 9 0 4\r\n_end\r\nprepend ap 9 0 6\r\nstart_\r\ngets ap\r\n'] },
  { name: 'cas', chunks: ['cas cs 0 0 1 1\r\na\r\nset cs 0 0 1\r\na\r\ngets cs\r\n'] },
  { name: 'cas syntax', chunks: ['cas cm 0 0 1 abc\r\ncas cm 0 0 1\r\ncas cm 0 0 1 -1\r\ncas cm 0 0 1 18446744073709551616\r\ncas cm 0 0 1 99999 noreply\r\nz\r\ncas cm 0 0 1 99999\r\nz\r\n'] },
  { name: 'incr/decr', chunks: ['set ic 0 0 2\r\n10\r\nincr ic 5\r\ndecr ic 3\r\nget ic\r\ndecr ic 100\r\nget ic\r\nincr ic 18446744073709551615\r\nincr ic 18446744073709551616\r\nincr ic -1\r\nincr ic x\r\nincr nosuch 1\r\ndecr nosuch 1\r\n'] },
  { name: 'incr wrap and growth', chunks: ['set iw 0 0 20\r\n18446744073709551615\r\nincr iw 1\r\nget iw\r\nset ig 0 0 1\r\n9\r\nincr ig 1\r\ngets ig\r\nincr ig 99999999999\r\nget ig\r\n'] },
  { name: 'incr non-numeric', chunks: ['set nn 0 0 3\r\nabc\r\nincr nn 1\r\nset nn 0 0 0\r\n\r\nincr nn 1\r\nset nn 0 0 3\r\n-12\r\nincr nn 1\r\nset nn 0 0 4\r\n 12a\r\nincr nn 1\r\nset nn 0 0 5\r\n12 ab\r\nincr nn 1\r\nset nn 0 0 3\r\n+12\r\nincr nn 1\r\nget nn\r\n'] },
  { name: 'incr syntax', chunks: ['incr\r\nincr x\r\nincr x 1 2 3\r\ndecr x 1 noreply extra\r\n'] },
  { name: 'delete', chunks: ['set dl 0 0 1\r\na\r\ndelete dl\r\ndelete dl\r\nset dl 0 0 1\r\na\r\ndelete dl 0\r\nset dl 0 0 1\r\na\r\ndelete dl 0 noreply\r\ndelete dl 1\r\ndelete dl noreply\r\ndelete dl 1 noreply\r\ndelete dl 0 0\r\ndelete\r\ndelete a b c d\r\n'] },
  { name: 'touch/gat', chunks: ['set th 0 0 1\r\na\r\ntouch th 100\r\ntouch nosuch 100\r\ntouch th\r\ntouch th x\r\ngat 100 th nosuch\r\ngats 0 th\r\ngat x th\r\ngat\r\ngat 10\r\ngats\r\n'] },
  { name: 'expired on set', chunks: ['set ex 0 -1 1\r\na\r\nget ex\r\nset ex2 0 1000 1\r\nb\r\nget ex2\r\nset ex3 0 2592001 1\r\nc\r\nget ex3\r\ntouch ex2 -1\r\nget ex2\r\n'] },
  { name: 'key lengths', chunks: [`set ${K250} 0 0 1\r\na\r\nget ${K250}\r\nset ${K251} 0 0 1\r\na\r\ndelete ${K251}\r\nincr ${K251} 1\r\ntouch ${K251} 1\r\ndelete ${K250}\r\n`] },
  { name: 'get long key', chunks: [`get a ${K251}\r\n`] },
  { name: 'get long key alone', chunks: [`get ${K251} a\r\n`] },
  { name: 'empty/odd lines', chunks: ['\r\n \r\n\n\r\r\nGET a\r\nget\r\ngets\r\nx\r\nxy\r\nm\r\nmz\r\nsetx\r\n'] },
  { name: 'tabs and spaces', chunks: ['  get  a   b  \r\nset\ttab 0 0 1\r\nget\ta\r\nset a 0  0 1\r\nz\r\nget a\r\n'] },
  { name: 'NUL in line', chunks: [Buffer.from('get a\0junk\r\nver\0sion\r\n\0\r\nset nul 0 0 3\r\na\0b\r\nget nul\r\n', 'latin1')] },
  { name: 'binary junk', chunks: [Buffer.from([1, 2, 3, 0xff, 0xfe, 13, 10, 0x7f, 32, 9, 13, 10])] },
  { name: 'verbosity', chunks: ['verbosity\r\nverbosity 1\r\nverbosity x\r\nverbosity 1 noreply\r\nverbosity noreply\r\nverbosity 1 2 3\r\nverbosity 0\r\n'] },
  { name: 'flush_all', chunks: ['set fa 0 0 1\r\na\r\nflush_all\r\nget fa\r\nset fa 0 0 1\r\nb\r\nget fa\r\nflush_all 0\r\nget fa\r\nflush_all x\r\nflush_all -1\r\nflush_all noreply\r\nflush_all 1 noreply\r\nflush_all 1 2\r\nflush_all 0 noreply 5\r\nflush_all 0\r\n'] },
  { name: 'shutdown', chunks: ['shutdown\r\n'] },
  { name: 'stats errors', chunks: ['stats nonsense\r\nstats detail\r\nstats detail on\r\nstats detail off\r\nstats detail bogus\r\nstats cachedump\r\nstats cachedump 1\r\nstats cachedump x y\r\nstats cachedump 99 1\r\nstats reset\r\n'] },
  // the histogram turned on at run time counts from then on and uses up a CAS id (gets shows it); no END after on/off
  { name: 'stats sizes on and off', chunks: ['stats sizes\r\nset sz0 0 0 1\r\na\r\nstats sizes_enable\r\nset sz 0 0 3\r\nabc\r\ngets sz sz0\r\nstats sizes\r\nstats sizes_enable\r\ngets sz\r\nstats sizes_disable\r\nstats sizes\r\nstats sizes_enable x\r\nstats sizes\r\nset sz 0 0 5\r\nabcde\r\nstats sizes\r\nstats sizes_bogus\r\nstats sizes_disable\r\nstats sizes_disable\r\n'] },
  { name: 'pipelined mixed', chunks: ['set p1 0 0 2\r\np1\r\nset p2 0 0 2\r\np2\r\nget p1 p2\r\nincr p1 1\r\nappend p1 0 0 1\r\n!\r\ngets p1\r\ndelete p2\r\nget p2\r\n'] },
  { name: 'split in pieces', gapMs: 5, chunks: ['se', 't sp 0', ' 0 5\r', '\nhel', 'lo', '\r', '\nge', 't sp\r\n'] },
  { name: 'value exactly at limit', chunks: [`set L 0 0 ${maxVal(1, false)}\r\n`, 'v'.repeat(maxVal(1, false)), '\r\nmg L s\r\n'] },
  { name: 'value over limit swallowed', chunks: [`set L 0 0 ${maxVal(1, false) + 1}\r\n`, 'v'.repeat(maxVal(1, false) + 1), '\r\nmg L s\r\n'] },
  { name: 'flags at limit', chunks: [`set L 1 0 ${maxVal(1, true)}\r\n`, 'v'.repeat(maxVal(1, true)), `\r\nset L 1 0 ${maxVal(1, true) + 1}\r\n`, 'v'.repeat(maxVal(1, true) + 1), '\r\nmg L s f\r\n'] },
  { name: 'huge length swallowed', chunks: ['set big 0 0 2000000\r\n', 'x'.repeat(2000000), '\r\nget big\r\n'] },
  { name: 'too large noreply', chunks: ['set big 0 0 2000000 noreply\r\n', 'x'.repeat(2000000), '\r\nget big\r\n'] },
  { name: 'too large removes old (set)', chunks: ['set tl 0 0 1\r\na\r\nset tl 0 0 2000000\r\n', 'x'.repeat(2000000), '\r\nget tl\r\nset tl 0 0 1\r\na\r\nadd tl 0 0 2000000\r\n', 'y'.repeat(2000000), '\r\nget tl\r\n'] },
  // ---- meta
  { name: 'mn/me', chunks: ['mn\r\nmn extra\r\nme nosuch\r\nme\r\nset me1 0 0 1\r\na\r\nme me1\r\nme me1 b\r\nme bWUx b\r\n'], normalize: noMeta },
  { name: 'mg basics', chunks: ['mg nosuch\r\nmg nosuch v\r\nmg nosuch v O123 k\r\nmg nosuch q\r\nset mg1 3 0 2\r\nhi\r\nmg mg1\r\nmg mg1 v\r\nmg mg1 s v f k O9\r\nmg mg1 c\r\nmg mg1 t\r\nmg\r\n'] },
  { name: 'mg hit/last access', chunks: ['set mh 0 0 1\r\na\r\nmg mh h l\r\nmg mh h l\r\nmg mh h u\r\nmg mh h\r\n'], normalize: noLast },
  { name: 'mg flag errors', chunks: ['mg a v v\r\nmg a z\r\nmg a O' + 'x'.repeat(33) + '\r\nmg nosuch O' + 'x'.repeat(33) + '\r\nmg a ' + 'k '.repeat(0) + 'a b c d e f g h i j k l m n o p q r s\r\nmg a Tx\r\nmg a Nx\r\nmg a Rx\r\nmg ' + K251 + ' v\r\n'] },
  { name: 'mg quiet pipeline', chunks: ['mg q1 v q\r\nmg q2 v q\r\nset q3 0 0 1\r\n3\r\nmg q3 v q\r\nmg q3 k q\r\nmn\r\n'] },
  { name: 'mg base64 keys', chunks: ['ms Zm9v 3 b\r\nbar\r\nmg Zm9v b v k\r\nget foo\r\nmg Zm9v= b v\r\nmg !!!! b v\r\nmg Zm9vYg== b k v\r\nmg AAEC b k\r\nms AAEC 1 b k\r\nx\r\nmg AAEC b k v\r\n'] },
  { name: 'mg vivify / stale', chunks: ['mg viv N30 s c v\r\nmg viv N30 s v\r\nms viv 3 T0\r\nnew\r\nmg viv v\r\nmd viv I T30\r\nmg viv v c\r\nmg viv v\r\nms viv 4 I\r\nnewr\r\nmg viv v\r\n'] },
  { name: 'mg recache', chunks: ['set rc 0 100 1\r\na\r\nmg rc R30 v\r\nmg rc R200 v\r\nmg rc R200 v\r\n'] },
  { name: 'mg touch', chunks: ['set mt 0 0 1\r\na\r\nmg mt T100 v\r\nmg mt T-1 v\r\nmg mt v\r\n'] },
  { name: 'ms basics', chunks: ['ms s1 2\r\nhi\r\nms s1 2 c k O5\r\nho\r\nmg s1 v c\r\nms s1 2 F7 T0\r\nhu\r\nmg s1 f v\r\nms s1 2 q\r\nhq\r\nmn\r\n'] },
  { name: 'ms modes', chunks: ['ms m1 1 ME\r\na\r\nms m1 1 ME\r\nb\r\nms m1 1 MA\r\nc\r\nms m1 1 MP\r\nd\r\nms m1 1 MR\r\ne\r\nms nom 1 MR\r\nf\r\nms nom 1 MA\r\ng\r\nms m1 1 MS\r\nh\r\nms m1 1 MX\r\ni\r\nms m1 1 MEE\r\nj\r\nmg m1 v\r\n'] },
  { name: 'ms cas', chunks: ['ms mc 1 c\r\na\r\nms mc 1 C1\r\nb\r\nms mc 1 C99999 q\r\nc\r\nms nosuchcas 1 C5\r\nd\r\nmg mc v\r\nms mc 1 C1 MA\r\ne\r\nms mc 1 Cx\r\nf\r\n'] },
  { name: 'ms errors', chunks: ['ms\r\nms k\r\nms k x\r\nms k -1\r\nms k 1 S\r\nz\r\nms k 1 T1 T2\r\nz\r\nms k 1 Fx\r\nz\r\nms k 1 O' + 'o'.repeat(33) + '\r\nz\r\nms k 2\r\nabc\r\nms k 2 q\r\nab\r\nms ' + K251 + ' 1\r\nz\r\nms k 1 a b c d e f g h i j k l m n o p q r s\r\nz\r\n'] },
  { name: 'ms too large', chunks: ['ms mbig 2000000 T0\r\n', 'x'.repeat(2000000), '\r\nmg mbig v\r\n'] },
  { name: 'md', chunks: ['md nosuch\r\nmd nosuch q\r\nmd nosuch O1 k\r\nset d1 0 0 1\r\na\r\nmd d1 q\r\nmg d1\r\nset d1 0 0 1\r\na\r\nmd d1 C1\r\nmd d1 O2 k\r\nmd d1\r\nmd\r\nmd d1 z\r\nmd d1 q q\r\n'] },
  { name: 'ma', chunks: ['ma nosuch\r\nma nosuch q\r\nma nosuch O1 k\r\nma cnt N0 J10\r\nma cnt v\r\nma cnt MD D3 v\r\nma cnt M- v\r\nma cnt M+ D100 v c\r\nma cnt MI v t\r\nma cnt q\r\nmg cnt v\r\nma cnt C1 v\r\nma cnt MX\r\nma cnt Dx\r\nma cnt Jx\r\nma cnt z\r\nset cnt 0 0 1\r\nx\r\nma cnt\r\nma cnt2 N0 J18446744073709551615 v\r\nma cnt2 v\r\nma cnt2 MD D5 v\r\nma\r\n'] },
  // ---- connection-level bad input
  { name: 'HTTP request closes', noSentinel: true, chunks: ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'] },
  // memcached closes on a last token "HTTP/…" only for words outside its first-letter command groups (s a c i d t g
  // and two-letter m words answer ERROR) and outside the commands it has (lru_crawler, lru, watch, extstore, …)
  { name: 'HTTP-like last token within command groups', chunks: ['cachedump HTTP/1.0\r\nsx HTTP/1.0\r\ntx HTTP/1.0\r\nix HTTP/1.0\r\ndx HTTP/1.0\r\nax HTTP/1.0\r\ncx HTTP/1.0\r\ngx HTTP/1.0\r\nmx HTTP/1.0\r\nslabs x HTTP/1.1\r\n' +
    'lru_crawler HTTP/1.0\r\nlru HTTP/1.0\r\nextstore HTTP/1.1\r\nrefresh_certs\r\nrefresh_certs HTTP/1.0\r\nversion HTTP/1.0\r\n'] },
  { name: 'watch HTTP-like', chunks: ['watch HTTP/1.0\r\n'] },
  { name: 'unsupported admin commands', chunks: ['lru noreply\r\nlru x noreply\r\nlru\r\nlru x y z\r\nextstore noreply\r\nextstore x y noreply\r\nextstore\r\nlru_crawler noreply\r\nlru_crawler x noreply\r\nslabs noreply\r\nrefresh_certs noreply\r\n'] },
  { name: 'watch noreply', chunks: ['watch noreply\r\n'] },
  { name: 'HTTP-like last token closes', noSentinel: true, chunks: ['version\r\nmisbehave HTTP/1.0\r\nversion\r\n'] },
  // closing on bad input drops the replies memcached has not written yet; it writes after a get, an mn, every 20
  // commands of a read (reqs_per_event) and at the end of a read
  { name: 'HTTP close drops unwritten replies', noSentinel: true, chunks: ['set hp 0 0 1\r\nh\r\nversion\r\nGET / HTTP/1.1\r\n'] },
  { name: 'HTTP close after 25 commands', noSentinel: true, chunks: ['version\r\n'.repeat(25) + 'GET / HTTP/1.1\r\n'] },
  { name: 'HTTP close after mn and get', noSentinel: true, chunks: ['version\r\nmn\r\nversion\r\nget hp\r\nversion\r\nGET / HTTP/1.1\r\n'] },
  { name: 'HTTP close in a later read', noSentinel: true, gapMs: 100, chunks: ['version\r\n', 'version\r\nGET / HTTP/1.1\r\n'] },
  { name: 'long line close drops unwritten replies', noSentinel: true, chunks: ['version\r\nset ' + 'x'.repeat(3000)] },
  { name: 'get long key drops unwritten replies', chunks: [`version\r\nset lk 0 0 1\r\nl\r\nget lk ${K251}\r\nversion\r\n` + 'version\r\n'.repeat(22) + `gets lk ${K251}\r\nget lk\r\nmn\r\nversion\r\nget ${K251}\r\n`] },
  // a value that ends in a later read than its command line: memcached reads the rest of it straight from the socket
  // (only the bytes it needs), writes the store's reply, then reads what follows as a new read — so bad input after
  // the value in that same chunk does not drop the reply
  { name: 'value ended in a later read: reply kept before a bad multi-get', gapMs: 100, chunks: ['set sv 0 0 2\r\n4', `2\r\nget ${K251}\r\nmn\r\n`] },
  { name: 'ms value ended in a later read: reply kept before a bad multi-get', gapMs: 100, chunks: ['ms sv2 2 MA\r\n4', `2\r\nget ${K251}\r\nmn\r\n`] },
  { name: 'value ended in a later read: reply kept before an HTTP close', noSentinel: true, gapMs: 100, chunks: ['set sv 0 0 2\r\n4', '2\r\nGET / HTTP/1.1\r\n'] },
  { name: 'value ended in a later read: reply kept before a long-line close', noSentinel: true, gapMs: 100, chunks: ['set sv 0 0 2\r\n4', '2\r\nset ' + 'x'.repeat(3000)] },
  { name: 'value ended in a later read: the commands after it count as a new read', noSentinel: true, gapMs: 100, chunks: ['set sv 0 0 2\r\n4', '2\r\n' + 'version\r\n'.repeat(25) + 'GET / HTTP/1.1\r\n'] },
  { name: 'too large value swallowed into a later read, then a bad multi-get', gapMs: 100, chunks: ['set big 0 0 2000000\r\n' + 'x'.repeat(1000), 'x'.repeat(1999000) + `\r\nget ${K251}\r\nmn\r\n`] },
  { name: 'quit', noSentinel: true, chunks: ['set q 0 0 1\r\nq\r\nquit\r\nget q\r\n'] },
  { name: 'long line closes', noSentinel: true, gapMs: 100, chunks: ['set ' + 'x'.repeat(3000), ' 0 0 1\r\na\r\n'] },
  { name: 'long get line allowed', gapMs: 100, chunks: ['get ' + 'a '.repeat(2000), 'a\r\n'] },
  { name: 'long key in one read', chunks: ['set ' + 'x'.repeat(3000) + ' 0 0 1\r\na\r\n'] },
];


/** ms flags whose meaning changed after 1.6.18 (see the header) dropped: s always, N in append mode. */
function since1618(flags: string[]): string[] {
  const append = flags.includes('MA') || flags.includes('MP');
  return flags.filter((f) => f !== 's' && !(append && f.startsWith('N')));
}

/** Seeded random command sequences (valid and broken) for a differential fuzz. */
function randomScript(seed: number, n: number): string {
  let x = seed >>> 0;
  const r = (m: number) => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return (x >>> 8) % m; };
  const pick = <T>(a: readonly T[]): T => a[r(a.length)];
  const keys = ['a', 'b', 'cc', 'num', 'n2', 'Zm9v', 'k' + 'x'.repeat(20)];
  const nums = ['0', '1', '7', '-1', '10', '4294967295', '4294967296', '18446744073709551615', '18446744073709551616', 'x', '+3', '-0', '99999999999'];
  const vals = ['', '0', '1', '42', 'abc', ' 12', '12 ', '18446744073709551615', 'hello world', '-5'];
  const meta = ['v', 'c', 'f', 's', 'k', 'q', 'O1', 'Oab', 'T0', 'T100', 'N0', 'N30', 'MD', 'MI', 'ME', 'MA', 'MP', 'MR', 'MS', 'D2', 'J5', 'I', 'C1', 'F3', 'u', 'h', 'b', 'z', 'v'];
  let out = '';
  for (let i = 0; i < n; i++) {
    const k = pick(keys);
    switch (r(14)) {
      case 0: case 1: { const v = pick(vals); const len = r(8) === 0 ? v.length + r(3) - 1 : v.length; out += `${pick(['set', 'add', 'replace', 'append', 'prepend'])} ${k} ${pick(['0', '0', '5', pick(nums)])} ${pick(['0', '0', '100', '-1'])} ${len}${r(5) === 0 ? ' noreply' : ''}\r\n${v}\r\n`; break; }
      case 2: out += `${pick(['get', 'gets'])} ${k}${r(2) ? ' ' + pick(keys) : ''}\r\n`; break;
      case 3: out += `${pick(['incr', 'decr'])} ${k} ${pick(nums)}${r(5) === 0 ? ' noreply' : ''}\r\n`; break;
      case 4: out += `delete ${k}${pick(['', '', ' 0', ' noreply', ' 1'])}\r\n`; break;
      case 5: out += `touch ${k} ${pick(['0', '100', '-1', 'x'])}\r\n`; break;
      case 6: out += `${pick(['gat', 'gats'])} ${pick(['0', '100', 'x'])} ${k}\r\n`; break;
      case 7: { const v = pick(vals); const fl = since1618(Array.from({ length: r(4) }, () => pick(meta))).join(' '); out += `ms ${k} ${v.length}${fl ? ' ' + fl : ''}\r\n${v}\r\n`; break; }
      case 8: case 9: { const fl = Array.from({ length: r(5) }, () => pick(meta)).join(' '); out += `mg ${k}${fl ? ' ' + fl : ''}\r\n`; break; }
      case 10: { const fl = Array.from({ length: r(4) }, () => pick(meta)).join(' '); out += `ma ${k}${fl ? ' ' + fl : ''}\r\n`; break; }
      case 11: { const fl = Array.from({ length: r(3) }, () => pick(meta)).join(' '); out += `md ${k}${fl ? ' ' + fl : ''}\r\n`; break; }
      case 12: out += pick(['version\r\n', 'mn\r\n', 'verbosity 1\r\n', 'bogus\r\n', '\r\n', 'stats reset\r\n', 'flush_all\r\n']); break;
      default: out += `cas ${k} 0 0 1 ${pick(['1', '2', '3', 'x', '99'])}\r\nz\r\n`;
    }
  }
  return out;
}

const SEEDS = Number(process.env.MC_FUZZ_SEEDS ?? 12);
for (let seed = 1; seed <= SEEDS; seed++) cases.push({ name: `random script ${seed}`, chunks: [randomScript(seed, 150)] });

for (const transport of TRANSPORTS) describe(`memcached differential, Debian memcached vs ours (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  const pair = referencePair(transport, ['-m', '64'], { port: 0, memoryMb: 64, threads: 1 });

  it(`the reference is memcached ${VERSION}, the version ours answers as`, async (t) => {
    if (!pair.ref) { t.skip('/usr/bin/memcached not installed (apt-get install memcached): differential cases skipped'); return; }
    const until = (b: Buffer) => b.includes('\r\n');
    const [a, b] = await Promise.all([exchange(pair.ref.port, ['version\r\n'], { until }), exchange(pair.ours.port, ['version\r\n'], { until })]);
    assert.equal(a.out.toString('latin1'), `VERSION ${VERSION}\r\n`, 'the reference memcached\'s version');
    assert.equal(b.out.toString('latin1'), a.out.toString('latin1'));
  });

  for (const c of cases) {
    it(c.name, async (t) => {
      if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
      await compare(pair.ref.port, pair.ours.port, c);
    });
    // right after the cas syntax cases: CAS values that match and that do not, read from each server
    if (c.name === 'cas syntax') {
      it('cas match/mismatch', async (t) => {
        if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
        const casOf = async (port: number) => {
          const r = (await exchange(port, ['set cm 0 0 1\r\na\r\ngets cm\r\n'], { until: (b) => b.includes('END\r\n') })).out.toString('latin1');
          const m = /^STORED\r\nVALUE cm 0 1 (\d+)\r\na\r\nEND\r\n$/.exec(r);
          assert.ok(m, show(r));
          return BigInt(m[1]);
        };
        const [ca, cb] = await Promise.all([casOf(pair.ref.port), casOf(pair.ours.port)]);
        assert.equal(cb, ca, 'CAS counters in step');
        // stale, matching, then the same (now stale) value again; noreply on a mismatch still changes nothing
        const chunks = [`cas cm 0 0 1 ${ca + 1n}\r\nb\r\ncas cm 0 0 1 ${ca}\r\nc\r\ncas cm 0 0 1 ${ca}\r\nd\r\n` +
          `cas cm 0 0 1 ${ca} noreply\r\ne\r\ngets cm\r\n`];
        const reply = await compare(pair.ref.port, pair.ours.port, { name: 'cas match/mismatch', chunks });
        assert.match(reply, new RegExp(`^EXISTS\r\nSTORED\r\nEXISTS\r\nVALUE cm 0 1 ${ca + 1n}\r\nc\r\nEND\r\nEN O__end__\r\n$`), show(reply));
      });
    }
  }
});

/** Sends a case to both servers (with the sentinel unless `noSentinel`); fails unless the replies and closing match. Returns our reply. */
async function compare(refPort: number, ourPort: number, c: Case): Promise<string> {
  // a sentinel whose reply cannot appear otherwise: a miss echoing a unique opaque
  const chunks = c.noSentinel ? c.chunks : [...c.chunks, 'mg __sentinel__ O__end__\r\n'];
  const END = 'EN O__end__\r\n';
  const until = c.noSentinel ? undefined : (b: Buffer) => b.length >= END.length && b.subarray(b.length - END.length).toString() === END;
  const opts: ExchangeOptions = { gapMs: c.gapMs, until, idleMs: c.noSentinel ? 1500 : 5000 };
  const [a, b] = await Promise.all([exchange(refPort, chunks, opts), exchange(ourPort, chunks, opts)]);
  const norm = c.normalize ?? ((s: string) => s);
  const ra = norm(a.out.toString('latin1')), rb = norm(b.out.toString('latin1'));
  if (process.env.MC_DIFF_DEBUG) console.log(c.name, show(ra).slice(0, 400));
  if (ra !== rb) {
    let i = 0;
    while (i < ra.length && ra[i] === rb[i]) i++;
    const from = Math.max(0, ra.lastIndexOf('\n', i - 200));
    assert.fail(`reply differs at byte ${i}\n memcached: …${show(ra.slice(from, i + 200))}\n      ours: …${show(rb.slice(from, i + 200))}`);
  }
  assert.equal(b.closed, a.closed, `connection closed: memcached ${a.closed}, ours ${b.closed}`);
  return rb;
}

// -o track_sizes: `stats sizes` as a histogram of item sizes (memcached's item size rounded up to 32 bytes)
for (const transport of TRANSPORTS) describe(`memcached -o track_sizes, Debian memcached vs ours (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  const pair = referencePair(transport, ['-m', '64', '-o', 'track_sizes'], { port: 0, memoryMb: 64, threads: 1, trackSizes: true });
  it('stats sizes after sets, overwrites, appends and deletes', async (t) => {
    if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
    let script = 'stats sizes\r\n';
    for (let i = 0; i < 40; i++) script += `set k${i} ${i % 3} 0 ${i * 7}\r\n${'v'.repeat(i * 7)}\r\n`;
    script += 'set k1 0 0 500\r\n' + 'w'.repeat(500) + '\r\nappend k2 0 0 100\r\n' + 'a'.repeat(100) + '\r\ndelete k3\r\ndelete k4\r\nms ' + 'K'.repeat(200) + ' 3 F1\r\nabc\r\nstats sizes\r\n';
    await compare(pair.ref.port, pair.ours.port, { name: 'stats sizes', chunks: [script] });
  });
  it('with -o track_sizes: on from the start (the first CAS is 2), off and on again at run time', async (t) => {
    if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
    const script = 'gets k0 k1\r\nstats sizes_disable\r\nstats sizes\r\nset off 0 0 9\r\n123456789\r\nstats sizes_enable\r\nset on 0 0 2\r\nab\r\n' +
      'gets off on\r\nstats sizes\r\nstats sizes_enable\r\nstats sizes\r\ndelete on\r\nstats sizes\r\n';
    await compare(pair.ref.port, pair.ours.port, { name: 'sizes at run time', chunks: [script] });
  });
});
