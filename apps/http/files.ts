// All file-system access of megapipe-http goes through this module, so that the backend can be swapped in one
// place: today node:fs/promises (libuv's thread pool, never blocking the event loop); later reads through the
// worker's io_uring channel.

import { promises as fsp } from 'node:fs';

export interface FileInfo {
  size: number;
  /** modification time, ms since the epoch (sub-millisecond precision kept) */
  mtimeMs: number;
  ino: number;
  dev: number;
  isFile: boolean;
  isDirectory: boolean;
}

/** An open file: positional reads, then close. */
export interface OpenFile {
  /** fstat of the open file (consistent with what `read` returns) */
  readonly info: FileInfo;
  /** Read up to `length` bytes at file position `position` into `buf[offset...]`; resolves with the count. */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP']);

function notFound(e: unknown): boolean {
  return NOT_FOUND.has((e as { code?: string }).code ?? '');
}

function info(s: import('node:fs').Stats): FileInfo {
  return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, dev: s.dev, isFile: s.isFile(), isDirectory: s.isDirectory() };
}

/** stat (following symlinks); null when the path does not exist (ENOENT, ENOTDIR, ...). */
export async function stat(path: string): Promise<FileInfo | null> {
  try {
    return info(await fsp.stat(path));
  } catch (e) {
    if (notFound(e)) return null;
    throw e;
  }
}

/** Canonical absolute path with every symlink resolved; null when it does not exist. */
export async function realpath(path: string): Promise<string | null> {
  try {
    return await fsp.realpath(path);
  } catch (e) {
    if (notFound(e)) return null;
    throw e;
  }
}

/** Open for reading; null when it does not exist. */
export async function open(path: string): Promise<OpenFile | null> {
  let fh: import('node:fs/promises').FileHandle;
  try {
    fh = await fsp.open(path, 'r');
  } catch (e) {
    if (notFound(e)) return null;
    throw e;
  }
  try {
    const st = info(await fh.stat());
    let closed = false;
    return {
      info: st,
      async read(buf, offset, length, position) {
        const r = await fh.read(buf, offset, length, position);
        return r.bytesRead;
      },
      async close() {
        if (closed) return;
        closed = true;
        await fh.close();
      },
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * The whole content of a file of at most `maxSize` bytes, with the fstat it was read under; `data` is null when
 * the file is larger (or not a regular file). Null when it does not exist.
 */
export async function readSmall(path: string, maxSize: number): Promise<{ info: FileInfo; data: Buffer | null } | null> {
  const f = await open(path);
  if (f === null) return null;
  try {
    const st = f.info;
    if (!st.isFile || st.size > maxSize) return { info: st, data: null };
    const data = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = await f.read(data, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    // shrank while reading: report what the file now is (the caller revalidates)
    return { info: got === st.size ? st : { ...st, size: got }, data: got === st.size ? data : data.subarray(0, got) };
  } finally {
    await f.close();
  }
}
