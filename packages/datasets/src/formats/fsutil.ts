import { StringDecoder } from 'node:string_decoder';
import { openRegularFile } from '@dfd/core/node';
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DatasetFormatError } from '../errors.js';
import { expressionFromName } from '../labels.js';
import type { DatasetContext, Sample, ValidationIssue } from '../types.js';

/** File extensions the decoders read. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.gif', '.tif', '.tiff'];

/** Whether `name` has an image extension. */
export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** Natural order: s2 before s10. */
export const naturalCompare = new Intl.Collator('en', { numeric: true, sensitivity: 'base' }).compare;

/** Whether `path` is a directory (false when missing). */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Whether `path` is a regular file (false when missing). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Throws DatasetFormatError unless `path` is a directory. */
export async function requireDir(path: string, what: string): Promise<void> {
  if (!(await isDir(path))) throw new DatasetFormatError({ file: path, expected: what }, 'folder not found');
}

/** Throws DatasetFormatError unless `path` is a file. */
export async function requireFile(path: string, what: string): Promise<void> {
  if (!(await isFile(path))) throw new DatasetFormatError({ file: path, expected: what }, 'file not found');
}

/** Validation issue for a missing folder, or none. */
export async function dirIssue(path: string, what: string): Promise<ValidationIssue[]> {
  return (await isDir(path)) ? [] : [{ severity: 'error', file: path, message: `folder not found: ${path} (expected ${what})` }];
}

/** Entries of a folder, natural order, dot-files left out. */
export async function listDir(path: string): Promise<Array<{ name: string; dir: boolean; path: string; link: boolean }>> {
  const entries = (await readdir(path, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => naturalCompare(a.name, b.name));
  // Symbolic links (datasets assembled with ln -s) count as what they point to.
  return Promise.all(entries.map(async (e) => ({ name: e.name, dir: e.isSymbolicLink() ? await isDir(join(path, e.name)) : e.isDirectory(), path: join(path, e.name), link: e.isSymbolicLink() })));
}

/**
 * How the folder walk treats symbolic links: `inside` (default) follows links whose target lies
 * inside the dataset folder and skips the others; `follow` also follows links leading out of it.
 * Loops (a link to the folder being walked or one above it, a folder reached twice) are always
 * skipped. Every skip is counted in a `symlink-skipped` warning.
 */
export type LinkPolicy = 'inside' | 'follow';

/** Whether `inner` is `outer` or lies under it (real paths). */
function within(outer: string, inner: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/** The child of `dir` whose name matches one of `names` case-insensitively, or undefined. */
export async function findChild(dir: string, names: readonly string[], kind: 'dir' | 'file' = 'dir'): Promise<string | undefined> {
  if (!(await isDir(dir))) return undefined;
  const wanted = names.map((n) => n.toLowerCase());
  const entries = await listDir(dir);
  for (const w of wanted) {
    const hit = entries.find((e) => e.name.toLowerCase() === w && e.dir === (kind === 'dir'));
    if (hit) return hit.path;
  }
  return undefined;
}

/**
 * Joins a path read from a label file onto `root`, refusing absolute paths and `..` that would
 * leave the dataset folder (a list file must not make us read /etc/passwd).
 */
export function safeJoin(root: string, rel: string, where: { file: string; line?: number; field?: string }): string {
  const clean = rel.trim();
  if (clean === '' || isAbsolute(clean) || /^[a-z]:[\\/]/i.test(clean) || clean.split(/[\\/]/).includes('..')) {
    throw new DatasetFormatError({ ...where, expected: 'a path relative to the dataset folder, without ..' }, `unsafe path '${rel}'`);
  }
  const full = resolve(root, clean);
  const r = relative(resolve(root), full);
  if (r.startsWith('..') || isAbsolute(r)) {
    throw new DatasetFormatError({ ...where, expected: 'a path inside the dataset folder' }, `path '${rel}' leaves ${root}`);
  }
  return full;
}

/** Longest line the label-file readers accept (characters); FER2013's pixel rows are about 9,000. */
export const MAX_LABEL_LINE_CHARS = 1024 * 1024;

/** A line for a message: at most 60 characters of it. */
export function lineExcerpt(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}... (${text.length} characters)` : text;
}

/**
 * Reads a text file line by line with 1-based line numbers (CRLF and lone CR tolerated, a BOM
 * dropped). The file is opened through the guarded reader (a FIFO, device or folder is refused,
 * not waited on), and a line longer than `maxLineChars` (default {@link MAX_LABEL_LINE_CHARS})
 * is a DatasetFormatError naming the file and line, raised before the rest of it is read.
 */
export async function* readLines(file: string, options: { maxLineChars?: number } = {}): AsyncGenerator<{ line: number; text: string }> {
  const max = options.maxLineChars ?? MAX_LABEL_LINE_CHARS;
  const { handle } = await openRegularFile(file, { what: 'label file' });
  const stream = handle.createReadStream({ highWaterMark: 64 * 1024 });
  const decoder = new StringDecoder('utf8');
  let n = 0;
  let pending = '';
  const tooLong = (line: number, text: string) =>
    new DatasetFormatError({ file, line, expected: `a line of at most ${max.toLocaleString('en-US')} characters` }, `line is longer than that (starts '${text.slice(0, 60)}'); is this the right file?`);
  const out = (text: string) => ({ line: ++n, text: n === 1 ? text.replace(/^\uFEFF/, '') : text });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      pending += decoder.write(chunk);
      const lines: string[] = [];
      let start = 0;
      for (let i = 0; i < pending.length; i++) {
        const c = pending.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        if (c === 13 && i + 1 === pending.length) break; // a CR at the end of a chunk: is an LF next?
        lines.push(pending.slice(start, i));
        if (c === 13 && pending.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
      }
      pending = pending.slice(start);
      for (const text of lines) {
        if (text.length > max) throw tooLong(n + 1, text);
        yield out(text);
      }
      if (pending.length > max + 1) throw tooLong(n + 1, pending);
    }
    pending += decoder.end();
    if (pending.endsWith('\r')) pending = pending.slice(0, -1);
    if (pending.length > max) throw tooLong(n + 1, pending);
    if (pending !== '') yield out(pending);
  } finally {
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
}

/**
 * Rows of a label file that name an image already listed: the same label again is dropped (and
 * counted in a `duplicate-row` warning naming the file and the lines), another label is a
 * DatasetFormatError naming both lines (the file contradicts itself). Without this a listed-twice
 * image counted twice in training and in accuracy.
 */
export class DuplicateRows {
  private readonly seen = new Map<string, { line: number; expression: number }>();
  private readonly dups: Array<{ line: number; first: number }> = [];

  constructor(readonly file: string) {}

  /** Whether the row (image `key` at `line` labelled `expression`) is new; false for a repeat. */
  add(key: string, expression: number, line: number): boolean {
    const prev = this.seen.get(key);
    if (!prev) {
      this.seen.set(key, { line, expression });
      return true;
    }
    if (prev.expression !== expression) {
      throw new DatasetFormatError({ file: this.file, line, expected: 'each image listed once' }, `'${key}' is listed again with another label (line ${prev.line} gives ${prev.expression}, this line ${expression}); remove one of the two rows`);
    }
    this.dups.push({ line, first: prev.line });
    return false;
  }

  /** Emits the warning when rows were dropped. */
  warn(ctx: DatasetContext, source: string): void {
    if (this.dups.length === 0) return;
    const shown = this.dups.slice(0, 5).map((d) => `line ${d.line} repeats line ${d.first}`).join(', ');
    ctx.warn({
      kind: 'duplicate-row',
      message: `${source}: ${this.file}: dropped ${this.dups.length} duplicate row(s) naming an image already listed with the same label (${shown}${this.dups.length > 5 ? ', ...' : ''})`,
      count: this.dups.length,
      file: this.file,
    });
  }
}

/** Splits one CSV line (RFC 4180 quotes, no embedded newlines). */
export function splitCsvLine(text: string, where: { file: string; line: number }): string[] {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (true) {
    if (text[i] === '"') {
      let v = '';
      i++;
      while (true) {
        if (i >= n) throw new DatasetFormatError({ ...where, expected: 'a closing quote on the same line' }, 'unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += text[i++];
      }
      out.push(v);
      if (i < n && text[i] !== ',') throw new DatasetFormatError({ ...where, expected: 'a comma after a quoted field' }, `unexpected '${text[i]}'`);
    } else {
      const j = text.indexOf(',', i);
      const end = j < 0 ? n : j;
      out.push(text.slice(i, end));
      i = end;
    }
    if (i >= n) break;
    i++; // the comma
    if (i === n) {
      out.push('');
      break;
    }
  }
  return out;
}

/** Parses an integer field in [min, max] or throws DatasetFormatError naming file/line/field. */
export function intField(value: string | undefined, min: number, max: number, where: { file: string; line?: number; field: string }): number {
  const t = (value ?? '').trim();
  const v = /^[+-]?\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new DatasetFormatError({ ...where, expected: `an integer in ${min}..${max}` }, value === undefined ? 'missing value' : `got '${value}'`);
  }
  return v;
}

/**
 * Every image file under `dir` (recursively), natural order, relative ids. Symbolic links follow
 * {@link LinkPolicy}: loops are never followed, links out of `root` only with `links: 'follow'`.
 */
export async function listImages(dir: string, root: string, ctx?: DatasetContext, source = 'folder', links: LinkPolicy = 'inside'): Promise<string[]> {
  const out: string[] = [];
  let skipped = 0;
  const skippedLinks = { loop: 0, outside: 0, broken: 0 };
  const rootReal = await realpath(root);
  const startReal = await realpath(dir);
  const visited = new Set<string>();
  const walk = async (d: string, real: string) => {
    visited.add(real);
    for (const e of await listDir(d)) {
      let target = real;
      if (e.link) {
        try {
          target = await realpath(e.path);
        } catch {
          skippedLinks.broken++;
          continue;
        }
        if (links !== 'follow' && !within(rootReal, target)) {
          skippedLinks.outside++;
          continue;
        }
        // A link to the folder being walked or above it would read it again (and its siblings, under this label).
        if (e.dir && (within(target, startReal) || visited.has(target))) {
          skippedLinks.loop++;
          continue;
        }
      }
      if (e.dir) {
        const sub = e.link ? target : join(real, e.name);
        if (visited.has(sub)) {
          skippedLinks.loop++;
          continue;
        }
        await walk(e.path, sub);
      } else if (isImageFile(e.name)) out.push(e.path);
      else skipped++;
    }
  };
  if (links !== 'follow' && !within(rootReal, startReal)) skippedLinks.outside++;
  // A folder that is a link to its own parent (or above) would read its siblings under its label.
  else if (within(startReal, await realpath(dirname(dir)))) skippedLinks.loop++;
  else await walk(dir, startReal);
  const where = relative(root, dir) || dir;
  if (skipped > 0 && ctx) {
    ctx.warn({ kind: 'not-an-image', message: `${source}: skipped ${skipped} non-image file(s) under ${where}`, count: skipped, file: dir });
  }
  const linkCount = skippedLinks.loop + skippedLinks.outside + skippedLinks.broken;
  if (linkCount > 0 && ctx) {
    const parts = [
      skippedLinks.loop ? `${skippedLinks.loop} loop(s) back into a folder already read` : '',
      skippedLinks.outside ? `${skippedLinks.outside} leading outside ${root} (add ?links=follow to the spec to follow them)` : '',
      skippedLinks.broken ? `${skippedLinks.broken} broken` : '',
    ].filter(Boolean);
    ctx.warn({ kind: 'symlink-skipped', message: `${source}: skipped ${linkCount} symbolic link(s) under ${where}: ${parts.join(', ')}`, count: linkCount, file: dir });
  }
  return out;
}

/** Relative id of a file under root, with forward slashes. */
export function relId(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

/**
 * Reads a folder of class folders (`<dir>/<class>/...images`). Folder names map to canonical
 * expressions with synonyms; unknown ones (contempt) are skipped with a counted warning. A
 * single wrapper folder that is not a class (SFEW's `Train_Aligned_Faces`) is descended into.
 */
export async function readClassFolders(dir: string, root: string, ctx: DatasetContext, source: string, links: LinkPolicy = 'inside'): Promise<Sample[]> {
  let current = dir;
  for (let depth = 0; depth < 3; depth++) {
    const subs = (await listDir(current)).filter((e) => e.dir);
    // A wrapper holds only folders; a lone unknown class folder (contempt/) holds images.
    const only = subs.length === 1 ? subs[0]! : undefined;
    if (only && expressionFromName(only.name) === undefined && (await listDir(only.path)).every((e) => e.dir)) current = only.path;
    else break;
  }
  const samples: Sample[] = [];
  const classDirs = (await listDir(current)).filter((e) => e.dir);
  if (classDirs.length === 0) {
    throw new DatasetFormatError({ file: current, expected: 'class folders such as angry/, happy/, neutral/' }, 'no class folders');
  }
  for (const c of classDirs) {
    const expression = expressionFromName(c.name);
    const files = await listImages(c.path, root, ctx, source, links);
    if (expression === undefined) {
      ctx.warn({ kind: 'unknown-class', message: `${source}: skipped class folder '${relId(root, c.path)}' (${files.length} images): not one of the 7 expressions`, count: files.length, file: c.path });
      continue;
    }
    for (const f of files) samples.push({ id: relId(root, f), image: { kind: 'file', path: f }, expression });
  }
  return samples;
}
