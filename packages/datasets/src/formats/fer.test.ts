import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createNodeDatasetRegistry } from '../node.js';
import { DatasetFormatError } from '../errors.js';
import { decodeImage } from '../image.js';
import { ferPixels, tempDir, writeImage, writeText } from '../test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());
const reg = createNodeDatasetRegistry();

// FER2013 rows: emotion (0 angry .. 6 neutral), pixels, Usage.
const FER_ROWS: Array<[number, number, string]> = [
  [0, 10, 'Training'],
  [1, 20, 'Training'],
  [2, 30, 'Training'],
  [3, 40, 'PublicTest'],
  [4, 50, 'PublicTest'],
  [5, 60, 'PrivateTest'],
  [6, 70, 'PrivateTest'],
];
const ferCsv = (rows = FER_ROWS) => ['emotion,pixels,Usage', ...rows.map(([e, v, u]) => `${e},${ferPixels(v)},${u}`)].join('\n') + '\n';

describe('fer2013 plugin', () => {
  it('maps emotions [5,2,1,3,4,0,6], Usage to train/val/test, 48x48 grey pixels to RGB without sharp', async () => {
    await writeText(join(dir, 'fer2013.csv'), ferCsv());
    const ds = await reg.resolve(`fer2013:${dir}`);
    expect(ds.splits.train!.map((s) => s.expression)).toEqual([5, 2, 1]);
    expect(ds.splits.val!.map((s) => s.expression)).toEqual([3, 4]);
    expect(ds.splits.test!.map((s) => s.expression)).toEqual([0, 6]);
    const src = ds.splits.test![1]!.image;
    expect(src.kind).toBe('pixels');
    const img = await decodeImage(src, async () => {
      throw new Error('raw pixels must not need a decoder');
    });
    expect([img.width, img.height]).toEqual([48, 48]);
    expect(Array.from(img.data.subarray(0, 6))).toEqual([70, 70, 70, 70, 70, 70]);
    // The csv file itself is a valid location too.
    expect((await reg.resolve(`fer2013:${join(dir, 'fer2013.csv')}`)).splits.train!.length).toBe(3);
  });

  it("reads icml_face_data.csv's ' Usage', ' pixels' header (leading spaces) and CRLF lines", async () => {
    const text = ['emotion, Usage, pixels', `3,Training,${ferPixels(1)}`, `4,PrivateTest,${ferPixels(2)}`].join('\r\n');
    await writeText(join(dir, 'icml_face_data.csv'), text);
    const ds = await reg.resolve(`fer2013:${dir}`);
    expect(ds.splits.train!.map((s) => s.expression)).toEqual([3]);
    expect(ds.splits.test!.map((s) => s.expression)).toEqual([4]);
  });

  it('rejects malformed rows with file, line and field', async () => {
    const cases: Array<[string, RegExp]> = [
      [`7,${ferPixels(1)},Training`, /line 2, field 'emotion'.*got '7'.*0\.\.6/],
      [`1,${ferPixels(1)},Train`, /line 2, field 'Usage'.*got 'Train'/],
      [`1,1 2 3,Training`, /line 2, field 'pixels'.*found 3 values.*2304/],
      [`1,${ferPixels(256)},Training`, /line 2, field 'pixels'.*256 out of range/],
      [`1,${ferPixels(1)} 5,Training`, /found 2305 values/],
      [`1,${ferPixels(1).replace('1', 'x')},Training`, /unexpected character 'x'/],
    ];
    for (const [row, re] of cases) {
      await writeText(join(dir, 'fer2013.csv'), `emotion,pixels,Usage\n${row}\n`);
      const err = await reg.resolve(`fer2013:${dir}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatasetFormatError);
      expect((err as DatasetFormatError).line).toBe(2);
      expect((err as Error).message).toMatch(re);
    }
    await writeText(join(dir, 'fer2013.csv'), `emotion,Usage\n`);
    await expect(reg.resolve(`fer2013:${dir}`)).rejects.toThrow(/column 'pixels' missing/);
    await expect(reg.resolve(`fer2013:${join(dir, 'none')}`)).rejects.toThrow(/no fer2013.csv/);
  });
});

describe('ferplus plugin', () => {
  const header = 'Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF';
  it('majority vote per METHOD.md, drops contempt/unknown/NF/no-majority/removed rows, counts them', async () => {
    await writeText(join(dir, 'fer2013.csv'), ferCsv());
    const rows = [
      'Training,fer0000000.png,6,2,1,1,0,0,0,0,0,0', // neutral (singles zeroed, 6/8)
      'Training,fer0000001.png,0,10,0,0,0,0,0,0,0,0', // happiness
      'Training,,0,0,0,0,0,0,0,0,0,10', // removed from FERPlus: empty image name
      'PublicTest,fer0000003.png,4,4,2,0,0,0,0,0,0,0', // no majority
      'PublicTest,fer0000004.png,0,0,0,0,0,0,0,7,3,0', // contempt
      'PrivateTest,fer0000005.png,0,0,1,0,0,0,9,0,0,0', // fear
      'PrivateTest,fer0000006.png,0,0,0,0,1,5,0,0,0,4', // disgust 5 of 9
    ];
    await writeText(join(dir, 'fer2013new.csv'), [header, ...rows].join('\n') + '\n');
    const ds = await reg.resolve(`ferplus:${dir}`);
    expect(ds.splits.train!.map((s) => [s.id, s.expression])).toEqual([
      ['fer0000000.png', 6],
      ['fer0000001.png', 3],
    ]);
    expect(ds.splits.val).toBeUndefined();
    expect(ds.splits.test!.map((s) => s.expression)).toEqual([1, 2]);
    // Pixels come from the matching fer2013.csv row (row 6 had value 70).
    const img = await decodeImage(ds.splits.test![1]!.image);
    expect(img.data[0]).toBe(70);
    const w = Object.fromEntries(ds.warnings.map((x) => [x.message.replace(/^ferplus: dropped \d+ image\(s\): /, ''), x.count]));
    expect(w).toEqual({ 'no image name (removed from FERPlus)': 1, 'no majority': 1, 'majority contempt': 1 });
  });

  it('rejects label files out of step with fer2013.csv and bad vote fields', async () => {
    await writeText(join(dir, 'fer2013.csv'), ferCsv(FER_ROWS.slice(0, 2)));
    await writeText(join(dir, 'fer2013new.csv'), [header, 'Training,a.png,1,0,0,0,0,0,0,0,0,0'].join('\n'));
    await expect(reg.resolve(`ferplus:${dir}`)).rejects.toThrow(/has 1 rows.*2 rows/);
    await writeText(join(dir, 'fer2013new.csv'), [header, 'Training,a.png,10,0,0,0,0,0,0,0,0,0', 'PublicTest,b.png,10,0,0,0,0,0,0,0,0,0'].join('\n'));
    await expect(reg.resolve(`ferplus:${dir}`)).rejects.toThrow(/line 3, field 'Usage'.*out of step/);
    await writeText(join(dir, 'fer2013new.csv'), [header, 'Training,a.png,10,x,0,0,0,0,0,0,0,0'].join('\n'));
    await expect(reg.resolve(`ferplus:${dir}`)).rejects.toThrow(/line 2, field 'happiness'.*got 'x'/);
    await expect(reg.resolve(`ferplus:${join(dir, 'nothing')}`)).rejects.toThrow(DatasetFormatError);
  });

  it('reads the generated FER2013Train/Valid/Test folders with label.csv (quoted face box)', async () => {
    await writeImage(join(dir, 'FER2013Train', 'fer0000000.png'), { width: 48, height: 48, channels: 1 });
    await writeImage(join(dir, 'FER2013Train', 'fer0000001.png'), { width: 48, height: 48, channels: 1 });
    await writeText(join(dir, 'FER2013Train', 'label.csv'), 'fer0000000.png,"(0, 0, 48, 48)",0,0,8,2,0,0,0,0,0,0\nfer0000001.png,"(0, 0, 48, 48)",0,0,0,0,0,0,0,0,0,10\n');
    await writeImage(join(dir, 'FER2013Test', 'fer0000002.png'), { width: 48, height: 48, channels: 1 });
    await writeText(join(dir, 'FER2013Test', 'label.csv'), 'fer0000002.png,"(0, 0, 48, 48)",0,0,0,0,10,0,0,0,0,0\n');
    const ds = await reg.resolve(`ferplus:${dir}`);
    expect(ds.splits.train!.map((s) => [s.id, s.expression])).toEqual([['FER2013Train/fer0000000.png', 0]]);
    expect(ds.splits.test!.map((s) => s.expression)).toEqual([5]);
    await writeText(join(dir, 'FER2013Test', 'label.csv'), '../../etc/passwd,"(0, 0, 48, 48)",0,0,0,0,10,0,0,0,0,0\n');
    await expect(reg.resolve(`ferplus:${dir}`)).rejects.toThrow(/line 1, field 'image name'.*unsafe path '..\/..\/etc\/passwd'/);
  });

  it('a label.csv row repeating an image counts once, with a warning naming file and line; a conflicting repeat is refused (issue 24)', async () => {
    await writeImage(join(dir, 'FER2013Train', 'fer0000000.png'), { width: 48, height: 48, channels: 1 });
    await writeImage(join(dir, 'FER2013Train', 'fer0000001.png'), { width: 48, height: 48, channels: 1 });
    const row0 = 'fer0000000.png,"(0, 0, 48, 48)",10,0,0,0,0,0,0,0,0,0';
    const row1 = 'fer0000001.png,"(0, 0, 48, 48)",0,10,0,0,0,0,0,0,0,0';
    const labels = join(dir, 'FER2013Train', 'label.csv');
    await writeText(labels, [row0, row1, row0, row0].join('\n') + '\n');
    const ds = await reg.resolve(`ferplus:${dir}`);
    expect(ds.splits.train!.map((s) => s.id)).toEqual(['FER2013Train/fer0000000.png', 'FER2013Train/fer0000001.png']);
    expect(ds.warnings.find((w) => w.kind === 'duplicate-row')).toMatchObject({ count: 2, message: `ferplus: ${labels}: dropped 2 duplicate row(s) naming an image already listed with the same label (line 3 repeats line 1, line 4 repeats line 1)` });
    await writeText(labels, [row0, row1, row0.replace(',10,0,', ',0,10,')].join('\n') + '\n');
    await expect(reg.resolve(`ferplus:${dir}`)).rejects.toThrow(/label\.csv, line 3.*'FER2013Train\/fer0000000\.png' is listed again with another label \(line 1 gives \d, this line \d\)/);
  });
});
