import { basename, join, resolve } from 'node:path';
import { DatasetFormatError } from '../errors.js';
import { FER2013_TO_CANONICAL, FERPLUS_COLUMNS, ferplusMajority } from '../labels.js';
import { parsePixelString } from '../image.js';
import type { Dataset, DatasetContext, DatasetPlugin, Sample } from '../types.js';
import { DuplicateRows, findChild, intField, isDir, isFile, readLines, relId, safeJoin, splitCsvLine } from './fsutil.js';

const USAGE: Record<string, 'train' | 'val' | 'test'> = { Training: 'train', PublicTest: 'val', PrivateTest: 'test' };
const FER_PIXELS = 48 * 48;

/** One row of fer2013.csv. */
interface FerRow {
  line: number;
  emotion: number;
  usage: 'train' | 'val' | 'test';
  pixels: Uint8Array;
}

async function locateCsv(location: string, names: string[]): Promise<string | undefined> {
  const p = resolve(location);
  if (await isFile(p)) return p;
  for (const n of names) {
    const hit = await findChild(p, [n], 'file');
    if (hit) return hit;
  }
  return undefined;
}

/** Column index by header name; header names are trimmed (icml_face_data.csv has ` Usage`, ` pixels`). */
function columns(header: string[], wanted: readonly string[], file: string): Record<string, number> {
  const names = header.map((h) => h.trim());
  const out: Record<string, number> = {};
  for (const w of wanted) {
    const i = names.findIndex((n) => n.toLowerCase() === w.toLowerCase());
    if (i < 0) throw new DatasetFormatError({ file, line: 1, field: w, expected: `a header with ${wanted.join(', ')}` }, `column '${w}' missing (header: ${names.join(',')})`);
    out[w] = i;
  }
  return out;
}

/** Reads fer2013.csv (`emotion,pixels,Usage`, 48x48 grey pixel strings), validating every row. */
export async function readFer2013Csv(file: string): Promise<FerRow[]> {
  const rows: FerRow[] = [];
  let col: Record<string, number> | undefined;
  for await (const { line, text } of readLines(file)) {
    if (text.trim() === '') continue;
    const f = splitCsvLine(text, { file, line });
    if (!col) {
      col = columns(f, ['emotion', 'pixels', 'Usage'], file);
      continue;
    }
    const where = { file, line };
    const emotion = intField(f[col.emotion!], 0, 6, { ...where, field: 'emotion' });
    const usageText = (f[col.Usage!] ?? '').trim();
    const usage = USAGE[usageText];
    if (!usage) throw new DatasetFormatError({ ...where, field: 'Usage', expected: 'Training, PublicTest or PrivateTest' }, `got '${usageText}'`);
    const pixels = parsePixelString(f[col.pixels!] ?? '', FER_PIXELS, { ...where, field: 'pixels' });
    rows.push({ line, emotion, usage, pixels });
  }
  if (!col) throw new DatasetFormatError({ file, line: 1, expected: 'a header emotion,pixels,Usage' }, 'empty file');
  return rows;
}

function ferSample(id: string, pixels: Uint8Array, expression: number): Sample {
  return { id, image: { kind: 'pixels', width: 48, height: 48, channels: 1, data: pixels }, expression };
}

/** `fer2013:<dir or csv>`: fer2013.csv (or icml_face_data.csv); Training -> train, PublicTest -> val, PrivateTest -> test. */
export const fer2013Plugin: DatasetPlugin = {
  name: 'fer2013',
  options: [],
  description: 'FER2013 fer2013.csv (emotion,pixels,Usage): Training/PublicTest/PrivateTest -> train/val/test',
  labels: { expression: true, factors: [] },
  async validate(location) {
    return (await locateCsv(location, ['fer2013.csv', 'icml_face_data.csv']))
      ? []
      : [{ severity: 'error', file: resolve(location), message: `no fer2013.csv in ${resolve(location)}` }];
  },
  async load(location) {
    const file = await locateCsv(location, ['fer2013.csv', 'icml_face_data.csv']);
    if (!file) throw new DatasetFormatError({ file: resolve(location), expected: 'fer2013.csv' }, 'file not found');
    const splits: Dataset['splits'] = {};
    const rows = await readFer2013Csv(file);
    rows.forEach((r, i) => {
      (splits[r.usage] ??= []).push(ferSample(`${basename(file)}#${i}`, r.pixels, FER2013_TO_CANONICAL[r.emotion]!));
    });
    return { name: `fer2013:${location}`, plugin: 'fer2013', splits, hasExpression: true, warnings: [] };
  },
};

function countDrops(ctx: DatasetContext, drops: Record<string, number>, file: string): void {
  for (const [reason, count] of Object.entries(drops)) {
    if (count > 0) ctx.warn({ kind: `ferplus-${reason}`, message: `ferplus: dropped ${count} image(s): ${reason}`, count, file });
  }
}

function majorityOrReason(votes: number[]): { expression?: number; reason?: string } {
  const expression = ferplusMajority(votes);
  if (expression !== undefined) return { expression };
  const v = votes.map((c) => (c <= 1 ? 0 : c));
  const sum = v.reduce((a, b) => a + b, 0);
  const arg = v.indexOf(Math.max(...v));
  if (sum === 0 || !(v[arg]! > 0.5 * sum)) return { reason: 'no majority' };
  return { reason: `majority ${FERPLUS_COLUMNS[arg]}` };
}

/**
 * `ferplus:<dir>`: FERPlus labels (fer2013new.csv, one row per fer2013.csv row, same order)
 * with FER2013 pixels (fer2013.csv in the same folder or `?fer2013=<csv>`), majority vote as in
 * METHOD.md. Also reads the generated layout FER2013Train|Valid|Test/label.csv + PNGs.
 */
export const ferplusPlugin: DatasetPlugin = {
  name: 'ferplus',
  options: ['fer2013'],
  description: 'FERPlus: fer2013new.csv + fer2013.csv (or FER2013Train/label.csv folders), majority vote',
  labels: { expression: true, factors: [] },
  async validate(location, options) {
    const root = resolve(location);
    if (!(await isDir(root))) return [{ severity: 'error', file: root, message: `folder not found: ${root}` }];
    if (await findChild(root, ['FER2013Train'])) return [];
    const issues = [];
    if (!(await findChild(root, ['fer2013new.csv'], 'file'))) issues.push({ severity: 'error' as const, file: root, message: `no fer2013new.csv in ${root}` });
    if (!options.fer2013 && !(await findChild(root, ['fer2013.csv'], 'file'))) {
      issues.push({ severity: 'error' as const, file: root, message: `no fer2013.csv in ${root} (FERPlus takes its pixels from FER2013; pass ?fer2013=<path>)` });
    }
    return issues;
  },
  async load(location, options, ctx) {
    const root = resolve(location);
    if (await findChild(root, ['FER2013Train'])) return loadFerplusFolders(root, location, ctx);
    const labelsFile = await findChild(root, ['fer2013new.csv'], 'file');
    const ferFile = options.fer2013 ? resolve(options.fer2013) : await findChild(root, ['fer2013.csv'], 'file');
    if (!labelsFile) throw new DatasetFormatError({ file: join(root, 'fer2013new.csv'), expected: 'the FERPlus label file' }, 'file not found');
    if (!ferFile || !(await isFile(ferFile))) throw new DatasetFormatError({ file: ferFile ?? join(root, 'fer2013.csv'), expected: 'FER2013 pixels' }, 'file not found');
    const fer = await readFer2013Csv(ferFile);
    const splits: Dataset['splits'] = {};
    const drops: Record<string, number> = { 'no image name (removed from FERPlus)': 0 };
    let col: Record<string, number> | undefined;
    let row = 0;
    for await (const { line, text } of readLines(labelsFile)) {
      if (text.trim() === '') continue;
      const f = splitCsvLine(text, { file: labelsFile, line });
      if (!col) {
        col = columns(f, ['Usage', 'Image name', ...FERPLUS_COLUMNS], labelsFile);
        continue;
      }
      const where = { file: labelsFile, line };
      const src = fer[row];
      if (!src) throw new DatasetFormatError({ ...where, expected: `at most ${fer.length} rows, one per fer2013.csv row` }, `more rows than ${ferFile}`);
      row++;
      const usageText = (f[col.Usage!] ?? '').trim();
      const usage = USAGE[usageText];
      if (!usage) throw new DatasetFormatError({ ...where, field: 'Usage', expected: 'Training, PublicTest or PrivateTest' }, `got '${usageText}'`);
      if (usage !== src.usage) {
        throw new DatasetFormatError({ ...where, field: 'Usage', expected: `the Usage of ${ferFile} line ${src.line}` }, `rows out of step: '${usageText}' vs fer2013.csv`);
      }
      const votes = FERPLUS_COLUMNS.map((c) => intField(f[col![c]!], 0, 1000, { ...where, field: c }));
      const imageName = (f[col['Image name']!] ?? '').trim();
      if (imageName === '') {
        drops['no image name (removed from FERPlus)']!++;
        continue;
      }
      const { expression, reason } = majorityOrReason(votes);
      if (expression === undefined) {
        drops[reason!] = (drops[reason!] ?? 0) + 1;
        continue;
      }
      (splits[usage] ??= []).push(ferSample(imageName, src.pixels, expression));
    }
    if (!col) throw new DatasetFormatError({ file: labelsFile, line: 1, expected: 'a header Usage,Image name,neutral,...' }, 'empty file');
    if (row !== fer.length) {
      throw new DatasetFormatError({ file: labelsFile, expected: `${fer.length} rows, one per row of ${ferFile}` }, `has ${row} rows`);
    }
    countDrops(ctx, drops, labelsFile);
    return { name: `ferplus:${location}`, plugin: 'ferplus', splits, hasExpression: true, warnings: [] };
  },
};

async function loadFerplusFolders(root: string, location: string, ctx: DatasetContext): Promise<Dataset> {
  const splits: Dataset['splits'] = {};
  const drops: Record<string, number> = {};
  for (const [folder, split] of [['FER2013Train', 'train'], ['FER2013Valid', 'val'], ['FER2013Test', 'test']] as const) {
    const dir = await findChild(root, [folder]);
    if (!dir) continue;
    const labelFile = await findChild(dir, ['label.csv'], 'file');
    if (!labelFile) throw new DatasetFormatError({ file: join(dir, 'label.csv'), expected: 'FERPlus label.csv: name,box,10 vote counts' }, 'file not found');
    const samples: Sample[] = [];
    const dups = new DuplicateRows(labelFile);
    for await (const { line, text } of readLines(labelFile)) {
      if (text.trim() === '') continue;
      const f = splitCsvLine(text, { file: labelFile, line });
      const where = { file: labelFile, line };
      if (f.length !== 12) throw new DatasetFormatError({ ...where, expected: '12 fields: image name, face box, 10 vote counts' }, `got ${f.length} fields`);
      const path = safeJoin(dir, f[0]!, { ...where, field: 'image name' });
      const votes = f.slice(2).map((v, i) => intField(v, 0, 1000, { ...where, field: FERPLUS_COLUMNS[i]! }));
      const { expression, reason } = majorityOrReason(votes);
      if (expression === undefined) {
        drops[reason!] = (drops[reason!] ?? 0) + 1;
        continue;
      }
      if (dups.add(relId(root, path), expression, line)) samples.push({ id: relId(root, path), image: { kind: 'file', path }, expression });
    }
    dups.warn(ctx, 'ferplus');
    splits[split] = samples;
  }
  countDrops(ctx, drops, root);
  return { name: `ferplus:${location}`, plugin: 'ferplus', splits, hasExpression: true, warnings: [] };
}
