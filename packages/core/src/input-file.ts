import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { DfdError } from './errors.js';

/**
 * An input file was refused before it was read: it is not a regular file (a FIFO, a character
 * or block device such as /dev/zero, a socket, a folder), it is larger than the cap for what it
 * is, or it cannot be opened. `path` names it, `reason` says why.
 */
export class InputFileError extends DfdError {
  readonly path: string;
  readonly reason: 'not-regular' | 'too-large' | 'unreadable';

  constructor(path: string, reason: InputFileError['reason'], message: string, options?: { cause?: unknown }) {
    super('E_INPUT_FILE', `${path}: ${message}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** Options of {@link openRegularFile} and {@link readRegularFile}. */
export interface InputFileOptions {
  /** Refuse files larger than this many bytes (default {@link DEFAULT_MAX_INPUT_BYTES}). */
  maxBytes?: number;
  /** What the file is, for messages (`--input`, `label file`, `image`). */
  what?: string;
}

/** Default size cap of one input file: 4 GiB (the largest Buffer Node reads in one piece). */
export const DEFAULT_MAX_INPUT_BYTES = 4 * 1024 ** 3;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function mb(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${n} bytes`;
}

function check(path: string, st: Stats, options: InputFileOptions): void {
  const what = options.what ? `${options.what} ` : '';
  if (!st.isFile()) throw new InputFileError(path, 'not-regular', `${what}is ${kindOf(st)}, not a regular file; dfd reads only regular files (symbolic links are followed to what they point to)`);
  const max = options.maxBytes ?? DEFAULT_MAX_INPUT_BYTES;
  if (st.size > max) throw new InputFileError(path, 'too-large', `${what}is ${mb(st.size)}, more than the ${mb(max)} dfd reads for it; is this the right file?`);
}

function openFailed(path: string, err: unknown, options: InputFileOptions): InputFileError {
  const e = err as NodeJS.ErrnoException;
  return new InputFileError(path, 'unreadable', `cannot open ${options.what ? `${options.what} ` : ''}(${e.code ?? e.message})`, { cause: err });
}

// O_NONBLOCK: opening a FIFO for reading does not wait for a writer, so it is refused instead of hanging.
const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Opens `path` for reading only if it is (or a symbolic link leads to) a regular file within the
 * size cap, checked on the opened descriptor (no race between the check and the read); a FIFO,
 * device, socket or folder is refused with {@link InputFileError} without blocking.
 */
export async function openRegularFile(path: string, options: InputFileOptions = {}): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, FLAGS);
  } catch (err) {
    throw openFailed(path, err, options);
  }
  try {
    const st = await handle.stat();
    check(path, st, options);
    return { handle, size: st.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Reads a whole regular file (see {@link openRegularFile}); stops at the cap if the file grows meanwhile. */
export async function readRegularFile(path: string, options: InputFileOptions = {}): Promise<Buffer> {
  const { handle, size } = await openRegularFile(path, options);
  try {
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await handle.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await handle.close();
  }
}

/** Synchronous {@link readRegularFile}. */
export function readRegularFileSync(path: string, options: InputFileOptions = {}): Buffer {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (err) {
    throw openFailed(path, err, options);
  }
  try {
    const st = fstatSync(fd);
    check(path, st, options);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === st.size ? buf : buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}
