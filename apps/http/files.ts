// All file-system access of megapipe-http goes through this module. Metadata (realpath, stat, open, close) uses
// node:fs/promises (libuv's thread pool: the event loop never blocks); file *content* is never read here: it is read
// by the connection's worker — through its io_uring channel (IORING_OP_READ into send memory for a response body,
// into a Buffer for the cache), or node:fs on the portable backend — given the fd of an OpenFile.

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

/** An open file: its descriptor for reads through the connection (sendFile, readFile), then close. */
export interface OpenFile {
  /** fstat of the open file (consistent with what reads of `fd` return) */
  readonly info: FileInfo;
  readonly fd: number;
  close(): Promise<void>;
}

/** Reads up to `length` bytes at `position` of an open fd (the connection's readFile); shorter at the end. */
export type ReadAt = (fd: number, position: number, length: number) => Promise<Buffer>;

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
      fd: fh.fd,
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
export async function readSmall(path: string, maxSize: number, readAt: ReadAt): Promise<{ info: FileInfo; data: Buffer | null } | null> {
  const f = await open(path);
  if (f === null) return null;
  try {
    const st = f.info;
    if (!st.isFile || st.size > maxSize) return { info: st, data: null };
    const data = await readAt(f.fd, 0, st.size);
    // shrank while reading: report what the file now is (the caller revalidates)
    return { info: data.length === st.size ? st : { ...st, size: data.length }, data };
  } finally {
    await f.close();
  }
}
