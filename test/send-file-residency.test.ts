// sendFile's residency probe (io_uring, regions of at least limits.sendfileMinBytes: cachestat(2) says whether the region
// is all in the page cache, so that sendfile(2) never waits for the disk): a refusal is judged once, by what it means.
// The kernel or its sandbox refusing cachestat altogether (a seccomp filter answering EPERM, EACCES or ENOSYS; a kernel
// before 6.5) is a verdict for the thread: cachestat is never called again, every later sendFile is spliced or read. A
// refusal tied to one file (Linux 6.14+: EPERM for a file the process may neither write nor own; EOPNOTSUPP on
// hugetlbfs; EBADF) counts for that sendFile only: other files still go with sendfile. Both forced for real, in a
// child process (test/fixtures/send-file-residency.ts): under seccomp-run, or as another user. Every byte is checked.
// There is no second probe for a file cachestat refuses: mincore(2) applies the same rule (an older one) and, rather
// than refuse, reports every page of such a file resident — evicted or not (bench/scripts/residency-probes.c shows it);
// sendfile on that answer could wait for the disk. The run-as-another-user case holds sendFile to that.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng, randomBytes, seccompLauncher, uringSkip } from './helpers.js';
import { native } from '../src/native.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const launcher = seccompLauncher();
/** sendfile(2) of resident regions needs cachestat (Linux 6.5) and, for lwsockets, IORING_OP_FIXED_FD_INSTALL (6.8). */
const sendfileSkip: string | false = uringSkip || (native?.probe().ops?.includes(54) && native.fileCached(0, 0, 1) !== -38 ? false : 'the kernel has no cachestat or IORING_OP_FIXED_FD_INSTALL');
const NOBODY = 65534;
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => existsSync(f));

/** A copy of what the fixture loads — the compiled library and fixture, the addon, node-gyp-build, package.json — in a
 * new directory that every user may enter (mode 0755 up to /tmp): the child may run as NOBODY, and a checkout can sit
 * in a directory only its owner may enter (a fresh clone in a 0700 mktemp directory, as CI makes). Returns the
 * directory to run the fixture from. */
function worldReadableFixture(to: string): string {
  const parts = ['package.json', 'binding.gyp', 'build/Release/megapipe.node', 'node_modules/node-gyp-build', 'dist/src',
    'dist/build.json', 'dist/test/fixtures/send-file-residency.js'];
  for (const part of parts) if (existsSync(join(root, part))) cpSync(join(root, part), join(to, part), { recursive: true });
  return join(to, 'dist/test');
}
/** The first directory above `dir` that another user cannot enter, or undefined. */
function closedToOthers(dir: string): string | undefined {
  for (let d = dirname(dir); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return d;
    if (dirname(d) === d) return undefined;
  }
}

/** Why the child cannot run as another user here, or undefined. */
function asOtherUserSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root, to run the child as another user';
  const closed = closedToOthers(dir);
  return closed === undefined ? undefined : `the temporary directory's parent ${closed} is closed to uid ${NOBODY} (TMPDIR)`;
}

interface ChannelResult { probes: number; sentfile: number; spliced: number; resolved: number; verified: number; mismatches: number; failures: string[] }
interface Result { direct: number[]; channels: ChannelResult[] }

/** Runs the fixture with `plan` (bounded in time), through `wrap` (a launcher and its arguments) or as user `uid`. */
function runFixture(plan: object, opts: { wrap?: string[]; uid?: number } = {}): Promise<Result> {
  const args = ['fixtures/send-file-residency.js', JSON.stringify(plan)];
  const [cmd, ...rest] = opts.wrap !== undefined ? [...opts.wrap, '--', process.execPath, ...args] : [process.execPath, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, rest, { cwd: fixtureDir, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}) });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { err += String(d); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`the fixture failed (exit ${code}): ${out} ${err}`));
      else resolve(JSON.parse(line) as Result);
    });
  });
}

const FILE_BYTES = 200_000;
let dir: string, fileA: string, fileB: string, fixtureDir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mp-residency-'));
  chmodSync(dir, 0o755);   // the child may run as another user
  fixtureDir = worldReadableFixture(join(dir, 'fixture'));
  fileA = join(dir, 'a');
  fileB = join(dir, 'b');
  writeFileSync(fileA, randomBytes(prng(31), FILE_BYTES), { mode: 0o644 });   // just written: in the page cache
  writeFileSync(fileB, randomBytes(prng(32), FILE_BYTES), { mode: 0o644 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

// two channels one after another, 2 connections each, 4 sendFiles in a row on each (A, B, A, B): 8 per channel
const plan = () => ({ files: [fileA, fileB], channels: 2, conns: 2, sendsPerConn: 4 });
const SENDS = 8;

function assertServed(r: Result): void {
  for (const c of r.channels) {
    assert.deepEqual(c.failures, [], 'no sendFile failed');
    assert.equal(c.resolved, SENDS, 'every sendFile resolved');
    assert.equal(c.mismatches, 0, 'no connection got bytes that differ');
    assert.equal(c.verified, SENDS * FILE_BYTES, 'every byte arrived');
  }
}

describe('sendFile residency probe (uring, cachestat)', { skip: sendfileSkip }, () => {
  it('unrestricted: one cachestat per sendFile, every region sent with sendfile (the control)', async () => {
    const r = await runFixture(plan());
    assertServed(r);
    assert.deepEqual(r.direct, [1, 1], 'both files resident');
    for (const c of r.channels) {
      assert.equal(c.probes, SENDS);
      assert.equal(c.sentfile, SENDS);
    }
  });

  for (const errno of ['EPERM', 'EACCES', 'ENOSYS']) {
    it(`cachestat refused for the whole process (seccomp: ${errno}): judged once, never called again, not even by a later channel`, { skip: launcher.skip }, async () => {
      const r = await runFixture(plan(), { wrap: [launcher.bin, '--deny', `cachestat=${errno}`] });
      assertServed(r);
      const e = -(({ EPERM: 1, EACCES: 13, ENOSYS: 38 }) as Record<string, number>)[errno]!;
      assert.deepEqual(r.direct, [e, e], 'the filter refuses every call');
      const [first, second] = r.channels as [ChannelResult, ChannelResult];
      // the first sendFile's call, and the one call that tells the kernel's or a sandbox's refusal from a file's
      assert.equal(first.probes, 2, "the first channel judged it at its first sendFile");
      assert.equal(second.probes, 0, 'the verdict outlives the channel: the second never calls cachestat');
      for (const c of r.channels) {
        assert.equal(c.sentfile, 0, 'residency unknown: never sendfile');
        assert.equal(c.spliced, SENDS, 'every region spliced instead');
      }
    });
  }

  it('a file this process may not write (cachestat refuses it, Linux 6.14+) is spliced; other files still go with sendfile', async (t: TestContext) => {
    const skip = asOtherUserSkip();
    if (skip !== undefined) { t.skip(skip); return; }
    chownSync(fileB, NOBODY, NOBODY);   // B is the child's own; A stays root's (readable, not writable)
    const r = await runFixture(plan(), { uid: NOBODY });
    if (r.direct[0] !== -1) { t.skip(`this kernel lets any reader use cachestat (got ${r.direct[0]} for a file not writable): before Linux 6.14`); return; }
    assertServed(r);
    assert.equal(r.direct[1], 1, 'the child\'s own file: resident');
    const [first, second] = r.channels as [ChannelResult, ChannelResult];
    // every sendFile asks (a file's answer holds for that file only), and the first refusal adds one call that finds the
    // kernel answering: the process keeps sendfile
    assert.equal(first.probes, SENDS + 1);
    assert.equal(second.probes, SENDS);
    for (const c of r.channels) {
      assert.equal(c.sentfile, SENDS / 2, 'B, the file it owns, with sendfile');
      assert.equal(c.spliced, SENDS / 2, 'A, refused, spliced');
    }
  });

  it('a file this process may not write, with CAP_FOWNER: cachestat answers (the remedy README names) and it goes with sendfile', async (t: TestContext) => {
    const skip = asOtherUserSkip();
    if (skip !== undefined) { t.skip(skip); return; }
    if (setpriv === undefined) { t.skip('no setpriv (util-linux) to give the child an ambient capability'); return; }
    chownSync(fileB, NOBODY, NOBODY);
    const wrap = [setpriv, '--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '--inh-caps', '+fowner', '--ambient-caps', '+fowner'];
    const r = await runFixture(plan(), { wrap });
    assertServed(r);
    assert.deepEqual(r.direct, [1, 1], 'A, root\'s and not writable, answered: CAP_FOWNER counts as owning it');
    for (const c of r.channels) {
      assert.equal(c.probes, SENDS);
      assert.equal(c.sentfile, SENDS);
    }
  });
});
