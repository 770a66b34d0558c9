import { existsSync } from 'node:fs';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isImageFile } from './formats/fsutil.js';
import type { Sample } from './types.js';

/** An image file that cannot be decoded, found from its header and end alone. */
export interface ImageProblem {
  file: string;
  /** What is wrong, e.g. `empty file (0 bytes)`, `truncated JPEG (no end-of-image marker)`. */
  reason: string;
}

/** What {@link checkImageHeaders} found. */
export interface ImageCheckResult {
  /** Distinct files looked at. */
  files: number;
  /** Of those, answered from the cache (same size and modification time). */
  cached: number;
  problems: ImageProblem[];
}

const TAIL = 1024;
/** Bumped when the rules change, so that cached verdicts of older rules are not reused. */
const CACHE_VERSION = 2;

function startsWith(b: Uint8Array, sig: number[], at = 0): boolean {
  return sig.every((v, i) => b[at + i] === v);
}

function hex(b: Uint8Array): string {
  return Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 2 ** 24;
}

/**
 * What is wrong with an image file, judged from its first bytes (`head`, at least 16), its last
 * bytes (`tail`, up to 1 KB) and its size; null when it looks complete. Recognises JPEG (SOI ...
 * EOI), PNG (signature ... IEND), GIF (... trailer), WebP (RIFF size), BMP (declared size), and by
 * their header only TIFF, AVIF/HEIF, JPEG 2000, JPEG XL and SVG (what sharp decodes).
 */
export function imageHeaderProblem(head: Uint8Array, tail: Uint8Array, size: number): string | null {
  if (size === 0) return 'empty file (0 bytes)';
  if (startsWith(head, [0xff, 0xd8, 0xff])) {
    for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return null;
    return 'truncated JPEG (no end-of-image marker)';
  }
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    const t = Buffer.from(tail).toString('latin1');
    return t.includes('IEND') ? null : 'truncated PNG (no IEND chunk)';
  }
  if (startsWith(head, [0x47, 0x49, 0x46, 0x38])) {
    let i = tail.length - 1;
    while (i >= 0 && tail[i] === 0) i--;
    return i >= 0 && tail[i] === 0x3b ? null : 'truncated GIF (no trailer)';
  }
  if (startsWith(head, [0x52, 0x49, 0x46, 0x46]) && startsWith(head, [0x57, 0x45, 0x42, 0x50], 8)) {
    const declared = u32le(head, 4) + 8;
    return declared <= size ? null : `truncated WebP (its header says ${declared} bytes, the file has ${size})`;
  }
  if (startsWith(head, [0x42, 0x4d]) && size >= 6) {
    const declared = u32le(head, 2);
    return declared <= size ? null : `truncated BMP (its header says ${declared} bytes, the file has ${size})`;
  }
  // Formats sharp also reads, checked by their header only: TIFF, AVIF/HEIF (ISO BMFF 'ftyp'), JPEG 2000, JPEG XL, SVG.
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return null;
  if (startsWith(head, [0x66, 0x74, 0x79, 0x70], 4)) return null;
  if (startsWith(head, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50]) || startsWith(head, [0xff, 0x4f, 0xff, 0x51])) return null;
  if (startsWith(head, [0xff, 0x0a]) || startsWith(head, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return null;
  if (/^(\uFEFF|\xEF\xBB\xBF)?\s*<(\?xml|svg|!--)/i.test(Buffer.from(head).toString('latin1'))) return null;
  if (size < 8) return `too short to be an image (${size} bytes)`;
  return `not a JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF/HEIF, JPEG 2000, JPEG XL or SVG image (starts with ${hex(head)})`;
}

/** Looks at one file: its size, first 16 and last 1 KB bytes. */
async function checkFile(path: string): Promise<{ size: number; mtimeMs: number; problem: string | null }> {
  let fh;
  try {
    // Non-blocking: a FIFO named like an image is reported (not a regular file) instead of hanging here.
    fh = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    return { size: -1, mtimeMs: -1, problem: `cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { size: -1, mtimeMs: st.mtimeMs, problem: 'not a regular file' };
    const head = new Uint8Array(16);
    await fh.read(head, 0, 16, 0);
    const n = Math.min(TAIL, st.size);
    const tail = new Uint8Array(n);
    if (n > 0) await fh.read(tail, 0, n, st.size - n);
    let problem = imageHeaderProblem(head, tail, st.size);
    // An unknown format in a file without an image extension may be for a custom decoder (a dataset plugin's own format).
    if (problem?.startsWith('not a ') && !isImageFile(path)) problem = null;
    return { size: st.size, mtimeMs: st.mtimeMs, problem };
  } finally {
    await fh.close();
  }
}

type CacheEntry = [size: number, mtimeMs: number, problem: string | null];

/**
 * Checks every image file of `samples` (file sources only) from its header and end, before any
 * decoding, and reports all bad ones at once: empty, truncated, or not an image. Fast (two small
 * reads per file, 16 at a time). With `cacheFile`, results are kept there keyed by path, size
 * and modification time, so unchanged files are not read again.
 */
export async function checkImageHeaders(samples: readonly Sample[], options: { cacheFile?: string; concurrency?: number } = {}): Promise<ImageCheckResult> {
  const files = [...new Set(samples.flatMap((s) => (s.image.kind === 'file' ? [s.image.path] : [])))];
  let cache: Record<string, CacheEntry> = {};
  if (options.cacheFile && existsSync(options.cacheFile)) {
    try {
      const j = JSON.parse(await readFile(options.cacheFile, 'utf8')) as { version?: number; entries?: Record<string, CacheEntry> };
      if (j.version === CACHE_VERSION && j.entries && typeof j.entries === 'object') cache = j.entries;
    } catch {
      // An unreadable cache is rebuilt.
    }
  }
  const problems: ImageProblem[] = [];
  let cached = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      const hit = cache[file];
      if (hit) {
        try {
          const st = await stat(file);
          if (st.size === hit[0] && st.mtimeMs === hit[1]) {
            cached++;
            if (hit[2]) problems.push({ file, reason: hit[2] });
            continue;
          }
        } catch {
          // Gone since: checked again below (and reported).
        }
      }
      const r = await checkFile(file);
      if (r.size >= 0) cache[file] = [r.size, r.mtimeMs, r.problem];
      else delete cache[file];
      if (r.problem) problems.push({ file, reason: r.problem });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 16) }, worker));
  if (options.cacheFile) {
    // The cache is an optimisation: a cache folder that cannot be written only costs a re-check next time.
    try {
      await mkdir(dirname(options.cacheFile), { recursive: true });
      const tmp = `${options.cacheFile}.tmp-${process.pid}`;
      await writeFile(tmp, JSON.stringify({ version: CACHE_VERSION, entries: cache }));
      await rename(tmp, options.cacheFile);
    } catch {
      // Not cached.
    }
  }
  problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { files: files.length, cached, problems };
}
