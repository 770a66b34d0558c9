import { readRegularFile } from '@dfd/core/node';
import { join, resolve } from 'node:path';
import { DatasetFormatError } from '../errors.js';
import { choiceOption } from '../spec.js';
import type { Dataset, DatasetPlugin, FactorSpec, Sample, ValidationIssue } from '../types.js';
import { findChild, intField, isDir, isFile, readLines, relId, safeJoin } from './fsutil.js';

/** RAF-DB attribute factors (METHOD.md, EIFE-1): lines 6, 7, 8 of `<name>_manu_attri.txt`. */
export const RAFDB_FACTORS: FactorSpec[] = [
  { name: 'gender', classes: 3, classNames: ['male', 'female', 'unsure'] },
  { name: 'race', classes: 3, classNames: ['caucasian', 'african-american', 'asian'] },
  { name: 'age', classes: 5, classNames: ['0-3', '4-19', '20-39', '40-69', '70+'] },
];

const LIST_FILE = 'list_patition_label.txt'; // sic: RAF-DB's own spelling

// Accept the RAF-DB root (with basic/) or the basic/ folder itself.
async function basicRoot(location: string): Promise<string> {
  const root = resolve(location);
  const basic = await findChild(root, ['basic']);
  return basic && (await isDir(join(basic, 'EmoLabel'))) ? basic : root;
}

/**
 * `rafdb:<dir>`: RAF-DB basic. `EmoLabel/list_patition_label.txt` lines `train_00001.jpg 5`
 * (labels 1..7, canonical = label - 1); images `Image/aligned/<name>_aligned.jpg` (default when
 * present) or `Image/original/<name>.jpg` (`?images=original`); attributes from
 * `Annotation/manual/<name>_manu_attri.txt` lines 6-8 (gender, race, age) when that folder
 * exists (`?attributes=false` to skip).
 */
export const rafdbPlugin: DatasetPlugin = {
  name: 'rafdb',
  options: ['images', 'attributes'],
  description: 'RAF-DB basic: EmoLabel/list_patition_label.txt, Image/aligned|original, Annotation/manual attributes',
  labels: { expression: true, factors: RAFDB_FACTORS },
  async validate(location) {
    const basic = await basicRoot(location);
    const issues: ValidationIssue[] = [];
    if (!(await isDir(basic))) return [{ severity: 'error', file: basic, message: `folder not found: ${basic}` }];
    if (!(await isFile(join(basic, 'EmoLabel', LIST_FILE)))) issues.push({ severity: 'error', file: join(basic, 'EmoLabel', LIST_FILE), message: `RAF-DB label list missing: ${join(basic, 'EmoLabel', LIST_FILE)}` });
    if (!(await isDir(join(basic, 'Image')))) issues.push({ severity: 'error', file: join(basic, 'Image'), message: `RAF-DB image folder missing: ${join(basic, 'Image')}` });
    return issues;
  },
  async load(location, options, ctx) {
    const basic = await basicRoot(location);
    const listFile = join(basic, 'EmoLabel', LIST_FILE);
    if (!(await isFile(listFile))) throw new DatasetFormatError({ file: listFile, expected: 'RAF-DB EmoLabel/list_patition_label.txt' }, 'file not found');
    const hasAligned = await isDir(join(basic, 'Image', 'aligned'));
    const images = choiceOption(options, 'images', ['aligned', 'original'], hasAligned ? 'aligned' : 'original');
    const imageDir = join(basic, 'Image', images);
    if (!(await isDir(imageDir))) throw new DatasetFormatError({ file: imageDir, expected: `RAF-DB Image/${images}/ folder` }, 'folder not found');
    const attrDir = join(basic, 'Annotation', 'manual');
    const wantAttributes = options.attributes === undefined ? await isDir(attrDir) : choiceOption(options, 'attributes', ['true', 'false'], 'true') === 'true';
    if (wantAttributes && !(await isDir(attrDir))) throw new DatasetFormatError({ file: attrDir, expected: 'RAF-DB Annotation/manual/ attribute files' }, 'folder not found');

    const splits: Dataset['splits'] = {};
    const seen = new Set<string>();
    let noAttributes = 0;
    const missing: string[] = [];
    for await (const { line, text } of readLines(listFile)) {
      if (text.trim() === '') continue;
      const where = { file: listFile, line };
      const parts = text.trim().split(/\s+/);
      if (parts.length !== 2) throw new DatasetFormatError({ ...where, expected: '<name>.jpg <label 1..7>' }, `got '${text}'`);
      const name = parts[0]!;
      safeJoin(imageDir, name, { ...where, field: 'name' });
      if (name.includes('/') || name.includes('\\')) throw new DatasetFormatError({ ...where, field: 'name', expected: 'a bare file name such as train_00001.jpg' }, `got '${name}'`);
      const label = intField(parts[1], 1, 7, { ...where, field: 'label' });
      const split = name.startsWith('train_') ? 'train' : name.startsWith('test_') ? 'test' : undefined;
      if (!split) throw new DatasetFormatError({ ...where, field: 'name', expected: 'a name starting with train_ or test_' }, `got '${name}'`);
      if (seen.has(name)) throw new DatasetFormatError({ ...where, field: 'name' }, `'${name}' is listed twice`);
      seen.add(name);
      const stem = name.replace(/\.[^.]+$/, '');
      const path = images === 'aligned' ? join(imageDir, `${stem}_aligned.jpg`) : join(imageDir, name);
      if (!(await isFile(path))) {
        missing.push(relId(basic, path));
        continue;
      }
      let factors: Record<string, number> | undefined;
      if (wantAttributes) {
        const attrFile = join(attrDir, `${stem}_manu_attri.txt`);
        if (await isFile(attrFile)) factors = await readAttributes(attrFile);
        else noAttributes++;
      }
      const sample: Sample = { id: stem, image: { kind: 'file', path }, expression: label - 1, ...(factors ? { factors } : {}) };
      (splits[split] ??= []).push(sample);
    }
    if (missing.length > 0) {
      throw new DatasetFormatError(
        { file: imageDir, expected: `one image per line of ${LIST_FILE}` },
        `${missing.length} listed image(s) missing, e.g. ${missing.slice(0, 3).join(', ')}${images === 'aligned' ? ' (try ?images=original)' : ''}`,
      );
    }
    if (noAttributes > 0) {
      ctx.warn({ kind: 'no-attributes', message: `rafdb: ${noAttributes} image(s) have no attribute file in Annotation/manual; their factors are -1`, count: noAttributes, file: attrDir });
    }
    return { name: `rafdb:${location}`, plugin: 'rafdb', splits, hasExpression: true, factors: wantAttributes ? RAFDB_FACTORS : undefined, warnings: [] };
  },
};

/** Reads lines 6-8 (gender 0-2, race 0-2, age group 0-4) of a RAF-DB `_manu_attri.txt` file. */
export async function readAttributes(file: string): Promise<Record<string, number>> {
  const lines = (await readRegularFile(file, { what: 'RAF-DB attribute file', maxBytes: 1024 * 1024 })).toString('utf8').split(/\r?\n/);
  const field = (index: number, name: string, max: number) => {
    const value = lines[index];
    if (value === undefined || value.trim() === '') {
      throw new DatasetFormatError({ file, line: index + 1, field: name, expected: `an integer in 0..${max} (lines 1-5 landmarks, 6 gender, 7 race, 8 age)` }, 'line missing');
    }
    return intField(value, 0, max, { file, line: index + 1, field: name });
  };
  return { gender: field(5, 'gender', 2), race: field(6, 'race', 2), age: field(7, 'age', 4) };
}
