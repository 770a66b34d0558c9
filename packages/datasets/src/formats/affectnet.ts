import { readRegularFile } from '@dfd/core/node';
import { join, resolve } from 'node:path';
import { DatasetFormatError } from '../errors.js';
import { AFFECTNET_TO_CANONICAL } from '../labels.js';
import type { Dataset, DatasetContext, DatasetPlugin, Sample } from '../types.js';
import { DuplicateRows, findChild, intField, isDir, isFile, listDir, readLines, relId, safeJoin, splitCsvLine } from './fsutil.js';

const CSV_COLUMNS = ['subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height', 'facial_landmarks', 'expression', 'valence', 'arousal'];
const AFFECTNET_CLASS_NAMES = ['neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger', 'contempt', 'none', 'uncertain', 'non-face'];

/** AffectNet label 0..6 -> canonical; 7 contempt and 8+ (none, uncertain, non-face) -> undefined. */
export function affectnetToCanonical(label: number): number | undefined {
  return label >= 0 && label < AFFECTNET_TO_CANONICAL.length ? AFFECTNET_TO_CANONICAL[label] : undefined;
}

function warnDrops(ctx: DatasetContext, drops: number[], file: string): void {
  drops.forEach((count, label) => {
    if (count > 0) {
      ctx.warn({ kind: 'affectnet-dropped', message: `affectnet: dropped ${count} image(s) labelled ${label} (${AFFECTNET_CLASS_NAMES[label] ?? 'unknown'})`, count, file });
    }
  });
}

async function imageRoot(root: string, option: string | undefined): Promise<string> {
  if (option) return resolve(root, option);
  for (const cand of [join(root, 'Manually_Annotated_Images'), join(root, 'Manually_Annotated', 'Manually_Annotated_Images'), join(root, 'Manually_Annotated')]) {
    if (await isDir(cand)) return cand;
  }
  throw new DatasetFormatError({ file: join(root, 'Manually_Annotated_Images'), expected: 'the AffectNet image folder (or ?images=<dir>)' }, 'folder not found');
}

async function findCsv(root: string, name: string): Promise<string | undefined> {
  return (await findChild(root, [name], 'file')) ?? (await findChild(join(root, 'Manually_Annotated_file_lists'), [name], 'file'));
}

/** Reads one AffectNet CSV (header optional: AffectNet's validation.csv ships without one). */
async function readAffectnetCsv(file: string, images: string, root: string, drops: number[], ctx: DatasetContext): Promise<Sample[]> {
  const samples: Sample[] = [];
  const dups = new DuplicateRows(file);
  let col: Record<string, number> | undefined;
  let checked = 0;
  for await (const { line, text } of readLines(file)) {
    if (text.trim() === '') continue;
    const f = splitCsvLine(text, { file, line });
    if (!col) {
      const names = f.map((h) => h.trim());
      if (names.includes('subDirectory_filePath')) {
        col = Object.fromEntries(CSV_COLUMNS.map((c) => [c, names.indexOf(c)]));
        if (col.expression! < 0) throw new DatasetFormatError({ file, line, field: 'expression', expected: CSV_COLUMNS.join(',') }, 'column missing');
        continue;
      }
      col = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, i]));
    }
    const where = { file, line };
    const label = intField(f[col.expression!], 0, 10, { ...where, field: 'expression' });
    const path = safeJoin(images, f[col.subDirectory_filePath!] ?? '', { ...where, field: 'subDirectory_filePath' });
    const expression = affectnetToCanonical(label);
    if (expression === undefined) {
      drops[label] = (drops[label] ?? 0) + 1;
      continue;
    }
    // Stat a few files only: AffectNet has ~290k images; a wrong images folder shows at once.
    if (checked < 5) {
      checked++;
      if (!(await isFile(path))) throw new DatasetFormatError({ ...where, field: 'subDirectory_filePath', expected: `an image under ${images} (or pass ?images=<dir>)` }, `${path} not found`);
    }
    if (dups.add(relId(root, path), expression, line)) samples.push({ id: relId(root, path), image: { kind: 'file', path }, expression });
  }
  dups.warn(ctx, 'affectnet');
  return samples;
}

/** Reads the single value of a small .npy file (AffectNet `N_exp.npy` holds a string such as '3'). */
export function readNpyScalar(bytes: Uint8Array, file: string): number {
  try {
    return readNpyScalarUnchecked(bytes, file);
  } catch (err) {
    // A DataView read past the end: the file is cut short (a partial download or copy).
    if (err instanceof RangeError) throw new DatasetFormatError({ file, expected: 'a complete NumPy .npy file holding one value' }, `truncated (${bytes.length} bytes); re-extract or re-download it`);
    throw err;
  }
}

function readNpyScalarUnchecked(bytes: Uint8Array, file: string): number {
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new DatasetFormatError({ file, expected: 'a NumPy .npy file' }, 'bad magic');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const data = bytes.subarray(start + headerLen);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let value: number;
  if (!descr) throw new DatasetFormatError({ file, field: 'descr', expected: 'a NumPy header' }, `cannot read header '${header.trim()}'`);
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) throw new DatasetFormatError({ file, field: 'descr' }, `unsupported dtype ${descr}`);
  const [, order, kind, size] = m;
  const little = order !== '>';
  const n = Number(size);
  if (kind === 'U') {
    let s = '';
    for (let i = 0; i < n; i++) {
      const cp = dv.getUint32(i * 4, little);
      if (cp === 0) break;
      s += String.fromCodePoint(cp);
    }
    value = Number(s.trim());
  } else if (kind === 'S') {
    value = Number(new TextDecoder().decode(data.subarray(0, n)).replace(/\0+$/, '').trim());
  } else if (kind === 'i' || kind === 'u') {
    value = n === 1 ? (kind === 'i' ? dv.getInt8(0) : dv.getUint8(0)) : n === 2 ? (kind === 'i' ? dv.getInt16(0, little) : dv.getUint16(0, little)) : n === 4 ? (kind === 'i' ? dv.getInt32(0, little) : dv.getUint32(0, little)) : Number(kind === 'i' ? dv.getBigInt64(0, little) : dv.getBigUint64(0, little));
  } else if (kind === 'f') {
    value = n === 4 ? dv.getFloat32(0, little) : dv.getFloat64(0, little);
  } else {
    throw new DatasetFormatError({ file, field: 'descr' }, `unsupported dtype ${descr}`);
  }
  if (!Number.isFinite(value)) throw new DatasetFormatError({ file, expected: 'a number' }, 'value is not numeric');
  return value;
}

async function readNpyLayout(dir: string, root: string, drops: number[]): Promise<Sample[]> {
  const images = join(dir, 'images');
  const ann = join(dir, 'annotations');
  if (!(await isDir(images)) || !(await isDir(ann))) throw new DatasetFormatError({ file: dir, expected: 'images/ and annotations/ folders' }, 'folder missing');
  const samples: Sample[] = [];
  for (const e of await listDir(images)) {
    const m = /^(\d+)\.(jpg|jpeg|png)$/i.exec(e.name);
    if (e.dir || !m) continue;
    const npy = join(ann, `${m[1]}_exp.npy`);
    if (!(await isFile(npy))) throw new DatasetFormatError({ file: npy, expected: `the expression label of ${e.name}` }, 'file not found');
    const label = readNpyScalar(new Uint8Array(await readRegularFile(npy, { what: 'AffectNet annotation', maxBytes: 1024 * 1024 })), npy);
    if (!Number.isInteger(label) || label < 0 || label > 10) throw new DatasetFormatError({ file: npy, field: 'expression', expected: 'an integer in 0..10' }, `got ${label}`);
    const expression = affectnetToCanonical(label);
    if (expression === undefined) {
      drops[label] = (drops[label] ?? 0) + 1;
      continue;
    }
    samples.push({ id: relId(root, e.path), image: { kind: 'file', path: e.path }, expression });
  }
  return samples;
}

/**
 * `affectnet:<dir>`: AffectNet. CSV layout: `training.csv` and `validation.csv` (in `<dir>` or
 * `<dir>/Manually_Annotated_file_lists`; header optional) whose `subDirectory_filePath` is
 * relative to `Manually_Annotated_Images/` (or `?images=<dir>`); or the npy layout
 * `train_set|val_set/images/N.jpg` + `annotations/N_exp.npy`. validation/val_set is the test
 * split (AffectNet's test set is not public). Labels 7 (contempt) and 8-10 are dropped.
 */
export const affectnetPlugin: DatasetPlugin = {
  name: 'affectnet',
  options: ['images'],
  description: 'AffectNet: training.csv/validation.csv + Manually_Annotated_Images, or train_set|val_set/images + annotations/N_exp.npy',
  labels: { expression: true, factors: [] },
  async validate(location) {
    const root = resolve(location);
    if (!(await isDir(root))) return [{ severity: 'error', file: root, message: `folder not found: ${root}` }];
    if ((await findCsv(root, 'training.csv')) || (await isDir(join(root, 'train_set')))) return [];
    return [{ severity: 'error', file: root, message: `no training.csv (or train_set/) in ${root}` }];
  },
  async load(location, options, ctx) {
    const root = resolve(location);
    const drops: number[] = [];
    const splits: Dataset['splits'] = {};
    const train = await findCsv(root, 'training.csv');
    if (train) {
      const images = await imageRoot(root, options.images);
      splits.train = await readAffectnetCsv(train, images, root, drops, ctx);
      const val = await findCsv(root, 'validation.csv');
      if (val) splits.test = await readAffectnetCsv(val, images, root, drops, ctx);
    } else {
      for (const [folder, split] of [['train_set', 'train'], ['val_set', 'test']] as const) {
        const dir = join(root, folder);
        if (await isDir(dir)) splits[split] = await readNpyLayout(dir, root, drops);
      }
      if (!splits.train && !splits.test) throw new DatasetFormatError({ file: root, expected: 'training.csv/validation.csv or train_set/ and val_set/' }, 'no AffectNet layout found');
    }
    warnDrops(ctx, drops, root);
    return { name: `affectnet:${location}`, plugin: 'affectnet', splits, hasExpression: true, warnings: [] };
  },
};
