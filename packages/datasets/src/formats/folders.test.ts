import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { EventBus } from '@dfd/core';
import { createNodeDatasetRegistry } from '../node.js';
import { DatasetFormatError } from '../errors.js';
import { decodeImage } from '../image.js';
import type { Dataset, Sample } from '../types.js';
import { tempDir, writeImage, writeText } from '../test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

const reg = createNodeDatasetRegistry();
const counts = (samples: Sample[] | undefined) => {
  const c = [0, 0, 0, 0, 0, 0, 0];
  for (const s of samples ?? []) c[s.expression!]!++;
  return c;
};

describe('folder plugin', () => {
  it('reads train/ and test/ class folders with synonyms, skips unknown classes with a counted warning', async () => {
    for (const [cls, n] of [['angry', 2], ['Happy', 3], ['sadness', 1], ['surprised', 1], ['normal', 2], ['fearful', 1], ['disgust', 1], ['contempt', 4]] as const) {
      for (let i = 0; i < n; i++) await writeImage(join(dir, 'train', cls, `${i}.jpg`));
    }
    await writeImage(join(dir, 'test', 'anger', 'a.png'));
    await writeImage(join(dir, 'test', 'neutral', 'sub', 'b.jpg')); // nested folders are read too
    await writeText(join(dir, 'test', 'neutral', 'notes.txt'), 'not an image');
    await writeText(join(dir, 'test', 'neutral', '.DS_Store'), 'x'); // dot-files are ignored silently
    const bus = new EventBus();
    const events: Array<{ message: string; detail?: Record<string, unknown> }> = [];
    bus.subscribe('warning', (e) => void events.push(e));
    const ds = await reg.resolve(`folder:${dir}`, { bus });
    await bus.drain();
    // canonical: surprise, fear, disgust, happiness, sadness, anger, neutral
    expect(counts(ds.splits.train)).toEqual([1, 1, 1, 3, 1, 2, 2]);
    expect(counts(ds.splits.test)).toEqual([0, 0, 0, 0, 0, 1, 1]);
    const unknown = ds.warnings.find((w) => w.kind === 'unknown-class')!;
    expect(unknown.count).toBe(4);
    expect(unknown.message).toMatch(/contempt/);
    expect(ds.warnings.find((w) => w.kind === 'not-an-image')!.count).toBe(1);
    expect(events.some((e) => e.detail?.kind === 'unknown-class' && e.detail.count === 4)).toBe(true);
    expect(ds.splits.test!.map((s) => s.id).sort()).toEqual(['test/anger/a.png', 'test/neutral/sub/b.jpg']);
    const img = await decodeImage(ds.splits.train![0]!.image);
    expect([img.width, img.height]).toEqual([8, 8]);
  });

  it('reads a single folder of classes into ?split=', async () => {
    await writeImage(join(dir, 'happy', '1.jpg'));
    await writeImage(join(dir, 'sad', '1.jpg'));
    expect(Object.keys((await reg.resolve(`folder:${dir}`)).splits)).toEqual(['train']);
    const ds = await reg.resolve(`folder:${dir}?split=test`);
    expect(counts(ds.splits.test)).toEqual([0, 0, 0, 1, 1, 0, 0]);
  });

  it('fails with typed errors on a missing folder and on a folder whose classes are all unknown', async () => {
    const err = await reg.resolve(`folder:${join(dir, 'nope')}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as Error).message).toMatch(/folder not found/);
    await writeImage(join(dir, 'contempt', '1.jpg'));
    await expect(reg.resolve(`folder:${dir}`)).rejects.toThrow(/split 'train'.*is empty/);
    await writeText(join(dir, 'x', 'a.txt'), '');
    await expect(reg.resolve(`folder:${join(dir, 'x')}`)).rejects.toThrow(/no class folders/);
  });
});

describe('file-system edge cases', () => {
  it('follows symbolic links to class folders (out of the dataset folder with ?links=follow) and turns fs errors into DatasetFormatError', async () => {
    const { symlink, chmod } = await import('node:fs/promises');
    await writeImage(join(dir, 'store', 'happy', '1.jpg'));
    await writeImage(join(dir, 'store', 'sad', '1.jpg'));
    await writeImage(join(dir, 'data', 'angry', '1.jpg'));
    await symlink(join(dir, 'store', 'happy'), join(dir, 'data', 'happy'));
    // A link out of the dataset folder is followed only when the spec says so (issue 17); otherwise it is skipped and counted.
    const ds = await reg.resolve(`folder:${join(dir, 'data')}?links=follow`);
    expect(counts(ds.splits.train)).toEqual([0, 0, 0, 1, 0, 1, 0]);
    const inside = await reg.resolve(`folder:${join(dir, 'data')}`);
    expect(counts(inside.splits.train)).toEqual([0, 0, 0, 0, 0, 1, 0]);
    expect(inside.warnings.find((w) => w.kind === 'symlink-skipped')).toMatchObject({ count: 1 });
    if (process.getuid?.() !== 0) {
      await chmod(join(dir, 'store', 'sad'), 0o000);
      await symlink(join(dir, 'store', 'sad'), join(dir, 'data', 'sad'));
      const err = await reg.resolve(`folder:${join(dir, 'data')}?links=follow`).catch((e: unknown) => e);
      await chmod(join(dir, 'store', 'sad'), 0o755);
      expect(err).toBeInstanceOf(DatasetFormatError);
      expect((err as Error).message).toMatch(/EACCES/);
    }
  });
});

describe('sfew and mma plugins', () => {
  it('sfew: Train/ and Val/ (wrapper folders descended, capitalised names); Val is the test split', async () => {
    for (const cls of ['Angry', 'Disgust', 'Fear', 'Happy', 'Neutral', 'Sad', 'Surprise']) await writeImage(join(dir, 'Train', 'Train_Aligned_Faces', cls, `${cls}_1.png`));
    await writeImage(join(dir, 'Train', 'Train_Aligned_Faces', 'Happy', 'x2.png'));
    await writeImage(join(dir, 'Val', 'Sad', 'v.png'));
    const ds = await reg.resolve(`sfew:${dir}`);
    expect(counts(ds.splits.train)).toEqual([1, 1, 1, 2, 1, 1, 1]);
    expect(counts(ds.splits.test)).toEqual([0, 0, 0, 0, 1, 0, 0]);
    expect(ds.splits.val).toBeUndefined();
    await expect(reg.resolve(`sfew:${join(dir, 'Train')}`)).rejects.toThrow(/no Train\/ folder|no Val\/ folder/);
  });

  it('mma: train/ valid/ test/ under MMAFEDB/', async () => {
    for (const [split, cls] of [['train', 'happy'], ['train', 'happy'], ['valid', 'angry'], ['test', 'neutral'], ['test', 'surprise']] as const) {
      await writeImage(join(dir, 'MMAFEDB', split, cls, `${Math.random().toString(36).slice(2)}.jpg`));
    }
    const ds: Dataset = await reg.resolve(`mma:${dir}`);
    expect(counts(ds.splits.train)).toEqual([0, 0, 0, 2, 0, 0, 0]);
    expect(counts(ds.splits.val)).toEqual([0, 0, 0, 0, 0, 1, 0]);
    expect(counts(ds.splits.test)).toEqual([1, 0, 0, 0, 0, 0, 1]);
  });
});

describe('identity and utkface plugins', () => {
  it('identity / orl: one folder per person in natural order (s2 before s10)', async () => {
    for (const s of ['s1', 's2', 's10']) for (const k of [1, 2]) await writeImage(join(dir, s, `${k}.png`), { channels: 1 });
    await writeText(join(dir, 's3', 'readme.txt'), '');
    const ds = await reg.resolve(`orl:${dir}`);
    expect(ds.hasExpression).toBe(false);
    expect(ds.factors).toEqual([{ name: 'identity', classes: 3, classNames: ['s1', 's2', 's10'] }]);
    const byId = new Map(ds.splits.train!.map((s) => [s.id, s.factors!.identity]));
    expect(byId.get('s2/1.png')).toBe(1);
    expect(byId.get('s10/2.png')).toBe(2);
    expect(ds.warnings.map((w) => w.kind).sort()).toEqual(['empty-identity', 'not-an-image']);
    // Greyscale PNGs decode to RGB.
    const img = await decodeImage(ds.splits.train![0]!.image);
    expect(img.data.length).toBe(8 * 8 * 3);
  });

  it('utkface: age -> 5 groups, gender, race; malformed names (missing race) skipped and counted', async () => {
    const names = ['2_0_2_20161219140623097.jpg.chip.jpg', '25_1_0_20170116174525125.jpg.chip.jpg', '70_0_3_2017.jpg.chip.jpg', '45_1_4_2017.jpg', '39_1_20170116174525125.jpg.chip.jpg', '30_2_0_2017.jpg.chip.jpg'];
    for (const n of names) await writeImage(join(dir, 'images', n));
    const ds = await reg.resolve(`utkface:${dir}`);
    const f = Object.fromEntries(ds.splits.train!.map((s) => [s.id.split('/').pop()!.split('_')[0], s.factors]));
    expect(f['2']).toEqual({ age: 0, gender: 0, race: 2 });
    expect(f['25']).toEqual({ age: 2, gender: 1, race: 0 });
    expect(f['70']).toEqual({ age: 4, gender: 0, race: 3 });
    expect(f['45']).toEqual({ age: 3, gender: 1, race: 4 });
    expect(ds.splits.train!.length).toBe(4);
    expect(ds.warnings).toHaveLength(1);
    expect(ds.warnings[0]).toMatchObject({ kind: 'bad-file-name', count: 2 });
  });
});

describe('folder plugin and symbolic links (issue 17)', () => {
  it('never follows a loop, never leaves the dataset folder unless ?links=follow, and counts what it skipped', async () => {
    const data = join(dir, 'data');
    const outside = join(dir, 'elsewhere');
    for (let i = 0; i < 10; i++) await writeImage(join(data, 'train', 'happy', `${i}.jpg`));
    for (let i = 0; i < 3; i++) await writeImage(join(data, 'train', 'sad', `${i}.jpg`));
    await writeImage(join(outside, 'a.jpg'));
    await writeImage(join(outside, 'b.jpg'));
    await symlink('..', join(data, 'train', 'happy', 'loopy')); // the case: 10 happy became 810, sad ones labelled happy
    await symlink('.', join(data, 'train', 'happy', 'self'));
    await symlink('..', join(data, 'train', 'fear')); // a class folder that is a link to its parent
    await symlink(outside, join(data, 'train', 'happy', 'out'));
    await symlink(join(outside, 'a.jpg'), join(data, 'train', 'sad', 'secret.jpg'));
    await symlink(join(data, 'nope.jpg'), join(data, 'train', 'sad', 'broken.jpg'));
    await mkdir(join(data, 'extra', 'happy'), { recursive: true });
    await writeImage(join(data, 'extra', 'happy', 'x.jpg'));
    await symlink(join(data, 'extra', 'happy'), join(data, 'train', 'happy', 'more')); // inside the root: followed
    const ds = await reg.resolve(`folder:${data}`);
    expect(counts(ds.splits.train)).toEqual([0, 0, 0, 11, 3, 0, 0]);
    const w = ds.warnings.filter((x) => x.kind === 'symlink-skipped');
    expect(w.reduce((s, x) => s + x.count, 0)).toBe(6);
    expect(w.map((x) => x.message).join('\n')).toMatch(/skipped 3 symbolic link\(s\) under train\/happy: 2 loop\(s\) back into a folder already read, 1 leading outside .* \(add \?links=follow/);
    expect(w.map((x) => x.message).join('\n')).toMatch(/under train\/sad: 1 leading outside .*, 1 broken/);
    expect(w.map((x) => x.message).join('\n')).toMatch(/under train\/fear: 1 loop/);
    const followed = await reg.resolve(`folder:${data}?links=follow`);
    expect(counts(followed.splits.train)).toEqual([0, 0, 0, 13, 4, 0, 0]);
    await expect(reg.resolve(`folder:${data}?links=always`)).rejects.toThrow(/option 'links=always' must be one of inside, follow/);
  });
});
