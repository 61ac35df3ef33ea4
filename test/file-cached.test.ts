// fileCached, sendFile's residency probe (native file_cached: cachestat(2), Linux 6.5), called directly: 1 only when
// every page of the region is in the page cache, 0 when any is not (pages past the end of the file never are), -errno
// when cachestat refuses; an empty region is 1. Files made here: just written (resident), sparse (a hole is never
// resident until read), evicted (fdatasync + POSIX_FADV_DONTNEED, through dd oflag=nocache) and read back.
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../src/native.js';

/** statfs(2)'s f_type of tmpfs (TMPFS_MAGIC): a file there is its pages — dd's nocache evicts nothing. */
const TMPFS_MAGIC = 0x01021994;

const ENOSYS = -38, EBADF = -9, EINVAL = -22, EOPNOTSUPP = -95;
const skip: string | false = native === null ? 'no addon' : native.fileCached(0, 0, 1) === ENOSYS ? 'the kernel has no cachestat (before Linux 6.5)' : false;
const KiB = 1024;

/** Drops `file`'s pages from the page cache (its data written back first): GNU dd's documented idiom, which calls
 * posix_fadvise(POSIX_FADV_DONTNEED) on the whole file. False when dd is missing or refuses. */
function evict(file: string): boolean {
  const r = spawnSync('dd', [`of=${file}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0'], { input: '', encoding: 'utf8' });
  return r.status === 0;
}

describe('fileCached (the residency probe, cachestat)', { skip }, () => {
  let dir: string, full: string, fd: number, sparseFd: number;
  const SIZE = 256 * KiB, DATA = 64 * KiB;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mp-file-cached-'));
    full = join(dir, 'full');
    writeFileSync(full, Buffer.alloc(SIZE, 7));   // just written: every page in the page cache
    fd = openSync(full, 'r');
    // the first DATA bytes written, the rest a hole never read
    const sparse = join(dir, 'sparse');
    const w = openSync(sparse, 'w');
    writeSync(w, Buffer.alloc(DATA, 9), 0, DATA, 0);
    ftruncateSync(w, SIZE);
    closeSync(w);
    sparseFd = openSync(sparse, 'r');
  });
  after(() => {
    closeSync(fd);
    closeSync(sparseFd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a region all in the page cache: 1 (the whole file, one byte, the last byte, a page-unaligned middle)', () => {
    assert.equal(native!.fileCached(fd, 0, SIZE), 1);
    assert.equal(native!.fileCached(fd, 0, 1), 1);
    assert.equal(native!.fileCached(fd, SIZE - 1, 1), 1);
    assert.equal(native!.fileCached(fd, 5000, 100_000), 1);
  });

  it('a region with any page not resident: 0 (a hole, or resident pages followed by one)', () => {
    assert.equal(native!.fileCached(sparseFd, 0, DATA), 1, 'the written part');
    assert.equal(native!.fileCached(sparseFd, DATA, SIZE - DATA), 0, 'the hole');
    assert.equal(native!.fileCached(sparseFd, 0, SIZE), 0, 'both');
    assert.equal(native!.fileCached(sparseFd, DATA - 1, 2), 0, 'the last written byte and the first of the hole');
  });

  it('past the end of the file: 0 (those pages are never in the page cache); no crash at any length', () => {
    assert.equal(native!.fileCached(fd, SIZE - 10, 20), 0, 'crossing the end');
    assert.equal(native!.fileCached(fd, SIZE, 1), 0, 'just past it');
    assert.equal(native!.fileCached(fd, 1e12, 4096), 0, 'far past it');
    assert.equal(native!.fileCached(fd, 0, 2 ** 52), 0, 'a huge length from the start');
    assert.equal(native!.fileCached(fd, 2 ** 52, 2 ** 52), 0, 'a huge position and length');
  });

  it('an empty region: 1 (nothing to wait for); a negative position: -EINVAL; a descriptor not open: -EBADF', () => {
    assert.equal(native!.fileCached(fd, 0, 0), 1);
    assert.equal(native!.fileCached(fd, SIZE * 4, 0), 1);
    assert.equal(native!.fileCached(fd, -1, 1), EINVAL);
    assert.equal(native!.fileCached(-1, 0, 1), EBADF);
  });

  it('evicted: 0; read back: 1', (t: TestContext) => {
    const file = join(dir, 'evict');
    writeFileSync(file, Buffer.alloc(SIZE, 3));
    const f = openSync(file, 'r');
    try {
      assert.equal(native!.fileCached(f, 0, SIZE), 1, 'just written');
      if (statfsSync(dir).type === TMPFS_MAGIC) { t.skip(`${dir} is on tmpfs, whose pages are the file itself: nothing to evict`); return; }
      if (!evict(file)) { t.skip('no GNU dd to evict the file with (oflag=nocache)'); return; }
      assert.equal(native!.fileCached(f, 0, SIZE), 0, 'evicted');
      assert.equal(readSync(f, Buffer.alloc(SIZE), 0, SIZE, 0), SIZE);
      assert.equal(native!.fileCached(f, 0, SIZE), 1, 'read back');
    } finally { closeSync(f); }
  });

  it('files without page-cache data (procfs, a device): 0, so never sent with sendfile', () => {
    for (const path of ['/proc/self/stat', '/dev/null']) {
      const f = openSync(path, 'r');
      try { assert.equal(native!.fileCached(f, 0, 4096), 0, path); } finally { closeSync(f); }
    }
  });

  it('a hugetlbfs file: -EOPNOTSUPP (refused for that file)', (t: TestContext) => {
    const mount = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((m) => m[2] === 'hugetlbfs')?.[1];
    if (mount === undefined) { t.skip('no hugetlbfs mounted'); return; }
    let f = -1;
    const file = join(mount, `mp-file-cached-${process.pid}`);
    try { f = openSync(file, 'w+'); } catch (e) { t.skip(`cannot create a file in ${mount}: ${(e as Error).message}`); return; }
    try { assert.equal(native!.fileCached(f, 0, 1), EOPNOTSUPP); } finally { closeSync(f); rmSync(file, { force: true }); }
  });
});
