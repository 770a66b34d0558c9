import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNodeDatasetRegistry, readNpyScalar } from '../node.js';
import { DatasetFormatError } from '../errors.js';
import { tempDir, writeImage, writeText } from '../test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());
const reg = createNodeDatasetRegistry();

const HEADER = 'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal';
const row = (path: string, expression: number) => `${path},10,10,100,100,"1.0;2.0;3.0;4.0",${expression},0.5,-0.2`;

/** A NumPy v1 .npy file holding a 0-d '<U1' string, as AffectNet's N_exp.npy. */
function npyString(value: string): Uint8Array {
  let header = `{'descr': '<U${value.length}', 'fortran_order': False, 'shape': (), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const bytes = new Uint8Array(10 + header.length + 4 * value.length);
  bytes.set([0x93, ...Buffer.from('NUMPY'), 1, 0], 0);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(Buffer.from(header, 'latin1'), 10);
  for (let i = 0; i < value.length; i++) new DataView(bytes.buffer).setUint32(10 + header.length + 4 * i, value.codePointAt(i)!, true);
  return bytes;
}

describe('affectnet plugin', () => {
  it('CSV layout: maps 0..6 by [6,3,4,0,1,2,5], drops 7+ (counted), validation.csv without header is the test split', async () => {
    const images = join(dir, 'Manually_Annotated', 'Manually_Annotated_Images');
    const train = [['1/a.jpg', 0], ['1/b.jpg', 1], ['2/c.jpg', 2], ['2/d.jpg', 3], ['3/e.jpg', 4], ['3/f.jpg', 5], ['3/g.jpg', 6], ['4/h.jpg', 7], ['4/i.jpg', 8], ['4/j.jpg', 10]] as const;
    for (const [p] of train) await writeImage(join(images, p));
    await writeText(join(dir, 'Manually_Annotated_file_lists', 'training.csv'), [HEADER, ...train.map(([p, e]) => row(p, e))].join('\n') + '\n');
    await writeImage(join(images, '9/z.png'));
    await writeText(join(dir, 'Manually_Annotated_file_lists', 'validation.csv'), row('9/z.png', 3) + '\n');
    const ds = await reg.resolve(`affectnet:${dir}`);
    expect(ds.splits.train!.map((s) => s.expression)).toEqual([6, 3, 4, 0, 1, 2, 5]);
    expect(ds.splits.test!.map((s) => [s.id, s.expression])).toEqual([['Manually_Annotated/Manually_Annotated_Images/9/z.png', 0]]);
    expect(ds.warnings.map((w) => [w.message, w.count])).toEqual([
      ['affectnet: dropped 1 image(s) labelled 7 (contempt)', 1],
      ['affectnet: dropped 1 image(s) labelled 8 (none)', 1],
      ['affectnet: dropped 1 image(s) labelled 10 (non-face)', 1],
    ]);
  });

  it('CSV layout: rejects traversal, out-of-range labels and a wrong image folder', async () => {
    const images = join(dir, 'Manually_Annotated_Images');
    await writeImage(join(images, '1/a.jpg'));
    const csv = join(dir, 'training.csv');
    await writeText(csv, [HEADER, row('../../../etc/passwd', 1)].join('\n'));
    await expect(reg.resolve(`affectnet:${dir}`)).rejects.toThrow(/training.csv, line 2, field 'subDirectory_filePath': unsafe path/);
    await writeText(csv, [HEADER, row('/etc/passwd', 1)].join('\n'));
    await expect(reg.resolve(`affectnet:${dir}`)).rejects.toThrow(/unsafe path '\/etc\/passwd'/);
    await writeText(csv, [HEADER, row('1/a.jpg', 11)].join('\n'));
    await expect(reg.resolve(`affectnet:${dir}`)).rejects.toThrow(/line 2, field 'expression': got '11'/);
    await writeText(csv, [HEADER, row('1/missing.jpg', 1)].join('\n'));
    await expect(reg.resolve(`affectnet:${dir}`)).rejects.toThrow(/missing.jpg not found/);
    await writeText(csv, [HEADER, row('1/a.jpg', 1)].join('\n'));
    expect((await reg.resolve(`affectnet:${dir}`)).splits.train!.length).toBe(1);
  });

  it('npy layout: train_set/val_set images + annotations/N_exp.npy', async () => {
    for (const [split, n, label] of [['train_set', 0, '1'], ['train_set', 1, '6'], ['train_set', 2, '7'], ['val_set', 5, '3']] as const) {
      await writeImage(join(dir, split, 'images', `${n}.jpg`));
      await writeText(join(dir, split, 'annotations', `${n}_aro.npy`), 'ignored');
      await writeFile(join(dir, split, 'annotations', `${n}_exp.npy`), npyString(label));
    }
    const ds = await reg.resolve(`affectnet:${dir}`);
    expect(ds.splits.train!.map((s) => [s.id, s.expression])).toEqual([['train_set/images/0.jpg', 3], ['train_set/images/1.jpg', 5]]);
    expect(ds.splits.test!.map((s) => s.expression)).toEqual([0]);
    expect(ds.warnings[0]).toMatchObject({ count: 1, message: expect.stringMatching(/labelled 7 \(contempt\)/) });
  });

  it('a training.csv row repeating an image counts once, with a warning naming file and line; a conflicting repeat is refused (issue 24)', async () => {
    const images = join(dir, 'Manually_Annotated_Images');
    await writeImage(join(images, '1/a.jpg'));
    await writeImage(join(images, '1/b.jpg'));
    const csv = join(dir, 'training.csv');
    await writeText(csv, [HEADER, row('1/a.jpg', 1), row('1/b.jpg', 2), row('1/a.jpg', 1)].join('\n'));
    const ds = await reg.resolve(`affectnet:${dir}`);
    expect(ds.splits.train!.length).toBe(2);
    expect(ds.warnings.find((w) => w.kind === 'duplicate-row')?.message).toBe(`affectnet: ${csv}: dropped 1 duplicate row(s) naming an image already listed with the same label (line 4 repeats line 2)`);
    await writeText(csv, [HEADER, row('1/a.jpg', 1), row('1/a.jpg', 2)].join('\n'));
    await expect(reg.resolve(`affectnet:${dir}`)).rejects.toThrow(/training\.csv, line 3.*is listed again with another label/);
  });

  it('a truncated N_exp.npy is a DatasetFormatError naming the file, not a RangeError (issue 24, case 13)', async () => {
    await writeImage(join(dir, 'train_set', 'images', '0.jpg'));
    const npy = join(dir, 'train_set', 'annotations', '0_exp.npy');
    const full = npyString('3');
    await mkdir(join(dir, 'train_set', 'annotations'), { recursive: true });
    for (const cut of [full.length - 2, 9, 11]) {
      await writeFile(npy, full.subarray(0, cut));
      const err = await reg.resolve(`affectnet:${dir}`).catch((e: unknown) => e);
      expect(err, String(cut)).toBeInstanceOf(DatasetFormatError);
      expect((err as Error).message, String(cut)).toContain(npy);
      expect((err as Error).message).toMatch(/truncated \(\d+ bytes\)|cannot read header/);
    }
  });

  it('readNpyScalar reads strings and integers, rejects non-npy', () => {
    expect(readNpyScalar(npyString('4'), 'x.npy')).toBe(4);
    expect(readNpyScalar(npyString('10'), 'x.npy')).toBe(10);
    expect(() => readNpyScalar(new Uint8Array(20), 'x.npy')).toThrow(/x.npy.*bad magic/);
  });
});
