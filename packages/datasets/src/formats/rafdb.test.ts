import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createNodeDatasetRegistry } from '../node.js';
import { DatasetFormatError } from '../errors.js';
import { decodeImage } from '../image.js';
import { tempDir, writeImage, writeText } from '../test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());
const reg = createNodeDatasetRegistry();

const attri = (gender: number, race: number, age: number) =>
  ['53.5 63.4', '97.3 62.6', '75.1 86.2', '58.9 106.3', '94.2 105.8', String(gender), String(race), String(age)].join('\r\n') + '\r\n';

async function rafdb(list: Array<[string, number]>, options: { aligned?: boolean; original?: boolean; attributes?: boolean } = {}) {
  const basic = join(dir, 'RAF-DB', 'basic');
  await writeText(join(basic, 'EmoLabel', 'list_patition_label.txt'), list.map(([n, l]) => `${n} ${l}`).join('\n') + '\n');
  for (const [name] of list) {
    const stem = name.replace('.jpg', '');
    if (options.aligned !== false) await writeImage(join(basic, 'Image', 'aligned', `${stem}_aligned.jpg`), { width: 10, height: 10 });
    if (options.original) await writeImage(join(basic, 'Image', 'original', name), { width: 12, height: 14 });
  }
  return basic;
}

describe('rafdb plugin', () => {
  it('reads list_patition_label.txt (labels 1..7 -> label-1), aligned images, attributes lines 6-8', async () => {
    const list: Array<[string, number]> = [
      ['train_00001.jpg', 5],
      ['train_00002.jpg', 1],
      ['train_00003.jpg', 7],
      ['test_0001.jpg', 4],
      ['test_0002.jpg', 2],
    ];
    const basic = await rafdb(list, { original: true });
    await writeText(join(basic, 'Annotation', 'manual', 'train_00001_manu_attri.txt'), attri(1, 2, 3));
    await writeText(join(basic, 'Annotation', 'manual', 'train_00002_manu_attri.txt'), attri(0, 0, 0));
    await writeText(join(basic, 'Annotation', 'manual', 'train_00003_manu_attri.txt'), attri(2, 1, 4));
    await writeText(join(basic, 'Annotation', 'manual', 'test_0001_manu_attri.txt'), attri(0, 1, 2));
    // test_0002 has no attribute file: counted, factors absent (-1 in batches).
    const ds = await reg.resolve(`rafdb:${join(dir, 'RAF-DB')}`);
    expect(ds.splits.train!.map((s) => [s.id, s.expression, s.factors])).toEqual([
      ['train_00001', 4, { gender: 1, race: 2, age: 3 }],
      ['train_00002', 0, { gender: 0, race: 0, age: 0 }],
      ['train_00003', 6, { gender: 2, race: 1, age: 4 }],
    ]);
    expect(ds.splits.test!.map((s) => [s.expression, s.factors])).toEqual([
      [3, { gender: 0, race: 1, age: 2 }],
      [1, undefined],
    ]);
    expect(ds.factors!.map((f) => [f.name, f.classes])).toEqual([['gender', 3], ['race', 3], ['age', 5]]);
    expect(ds.warnings).toEqual([expect.objectContaining({ kind: 'no-attributes', count: 1 })]);
    expect((await decodeImage(ds.splits.train![0]!.image)).width).toBe(10);
    // ?images=original uses Image/original/<name>.jpg; the basic/ folder itself is a valid root.
    const orig = await reg.resolve(`rafdb:${basic}?images=original&attributes=false`);
    expect((await decodeImage(orig.splits.test![0]!.image)).height).toBe(14);
    expect(orig.factors).toBeUndefined();
    expect(orig.splits.train![0]!.factors).toBeUndefined();
  });

  it('rejects path traversal, bad labels, bad names and missing images with file and line', async () => {
    const basic = await rafdb([['train_00001.jpg', 5]]);
    const listFile = join(basic, 'EmoLabel', 'list_patition_label.txt');
    const cases: Array<[string, RegExp]> = [
      ['train_00001.jpg 5\n../../etc/passwd 1\n', /list_patition_label.txt, line 2, field 'name': unsafe path '..\/..\/etc\/passwd'/],
      ['train_00001.jpg 8\n', /line 1, field 'label': got '8'; expected an integer in 1..7/],
      ['train_00001.jpg five\n', /line 1, field 'label'/],
      ['train_00001.jpg\n', /line 1: got 'train_00001.jpg'; expected <name>.jpg <label 1..7>/],
      ['val_00001.jpg 3\n', /line 1, field 'name'.*train_ or test_/],
      ['train_00001.jpg 5\ntrain_00001.jpg 5\n', /line 2.*listed twice/],
      ['train_00001.jpg 5\ntrain_00009.jpg 5\n', /1 listed image\(s\) missing, e.g. Image\/aligned\/train_00009_aligned.jpg/],
    ];
    for (const [text, re] of cases) {
      await writeText(listFile, text);
      const err = await reg.resolve(`rafdb:${basic}`).catch((e: unknown) => e);
      expect(err, text).toBeInstanceOf(DatasetFormatError);
      expect((err as Error).message).toMatch(re);
    }
  });

  it('rejects malformed attribute files naming the line', async () => {
    const basic = await rafdb([['train_00001.jpg', 5]]);
    const file = join(basic, 'Annotation', 'manual', 'train_00001_manu_attri.txt');
    await writeText(file, attri(1, 3, 2));
    await expect(reg.resolve(`rafdb:${basic}`)).rejects.toThrow(/train_00001_manu_attri.txt, line 7, field 'race': got '3'/);
    await writeText(file, '1 2\n3 4\n5 6\n7 8\n9 10\n1\n');
    await expect(reg.resolve(`rafdb:${basic}`)).rejects.toThrow(/line 7, field 'race': line missing/);
  });

  it('validates the folder before loading', async () => {
    await expect(reg.resolve(`rafdb:${dir}`)).rejects.toThrow(/RAF-DB label list missing/);
  });
});
