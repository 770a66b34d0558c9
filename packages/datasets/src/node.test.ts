import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { createNodeDatasetRegistry, decodeImageFile, loadDatasetPluginModule, nodeImageDecoder, registerDatasetPluginModules } from './node.js';
import { DatasetSpecError, ImageDecodeError } from './errors.js';
import { decodeImage, getDefaultImageDecoder } from './image.js';
import { createLoader, disposeBatch } from './loader.js';
import { evalTransform, trainTransform } from './transforms.js';
import { tempDir, writeImage, writeText } from './test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeAll(async () => {
  await tf.setBackend('cpu');
});
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

describe('decodeImageFile (sharp)', () => {
  it('turns grey, grey+alpha, RGBA and palette images into RGB', async () => {
    const w = 3;
    const h = 2;
    const grey = Uint8Array.from([0, 50, 100, 150, 200, 250]);
    await sharp(grey, { raw: { width: w, height: h, channels: 1 } }).png().toFile(join(dir, 'g.png'));
    const g = await decodeImageFile(join(dir, 'g.png'));
    expect([g.width, g.height]).toEqual([3, 2]);
    expect(Array.from(g.data)).toEqual(Array.from(grey).flatMap((v) => [v, v, v]));

    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i % 4 === 3 ? 255 : i * 10));
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(join(dir, 'a.png'));
    const a = await decodeImageFile(join(dir, 'a.png'));
    expect(Array.from(a.data)).toEqual(Array.from(rgba).filter((_, i) => i % 4 !== 3));

    const ga = Uint8Array.from([10, 255, 20, 255, 30, 255, 40, 255, 50, 255, 60, 255]);
    await sharp(ga, { raw: { width: w, height: h, channels: 2 } }).png().toFile(join(dir, 'ga.png'));
    expect(Array.from((await decodeImageFile(join(dir, 'ga.png'))).data.subarray(0, 6))).toEqual([10, 10, 10, 20, 20, 20]);

    const colours = Uint8Array.from({ length: 16 * 16 * 3 }, (_, i) => [255, 0, 0, 0, 0, 255][i % 6]!);
    await sharp(colours, { raw: { width: 16, height: 16, channels: 3 } }).png({ palette: true, colours: 2 }).toFile(join(dir, 'p.png'));
    const meta = await sharp(join(dir, 'p.png')).metadata();
    expect(meta.isPalette).toBe(true);
    const p = await decodeImageFile(join(dir, 'p.png'));
    expect(Array.from(p.data.subarray(0, 6))).toEqual([255, 0, 0, 0, 0, 255]);
  });

  it('throws ImageDecodeError naming the file for truncated, non-image and missing files', async () => {
    await writeImage(join(dir, 'ok.jpg'), { width: 64, height: 64 });
    const bytes = await readFile(join(dir, 'ok.jpg'));
    await writeFile(join(dir, 'cut.jpg'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await writeText(join(dir, 'text.jpg'), 'not really a jpeg');
    for (const [name, re] of [['cut.jpg', /cut.jpg: cannot decode image/], ['text.jpg', /text.jpg: cannot decode image/], ['none.jpg', /none.jpg: cannot decode image/]] as const) {
      const err = await decodeImageFile(join(dir, name)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageDecodeError);
      expect((err as Error).message).toMatch(re);
    }
    expect((await decodeImageFile(join(dir, 'ok.jpg'))).width).toBe(64);
  });

  it('is the default decoder once @dfd/datasets/node is imported; bytes and file: URLs work', async () => {
    expect(getDefaultImageDecoder()).toBe(nodeImageDecoder);
    await writeImage(join(dir, 'x.png'), { width: 5, height: 4, value: 77 });
    const fromFile = await decodeImage({ kind: 'file', path: join(dir, 'x.png') });
    const fromBytes = await decodeImage({ kind: 'bytes', data: new Uint8Array(await readFile(join(dir, 'x.png'))) });
    const fromUrl = await decodeImage({ kind: 'url', url: `file://${join(dir, 'x.png')}` });
    expect(fromFile.data[0]).toBe(77);
    await writeImage(join(dir, 'big.jpg'), { width: 300, height: 200 });
    const shrunk = await decodeImage({ kind: 'file', path: join(dir, 'big.jpg') }, undefined, { maxSide: 90 });
    expect([shrunk.width, shrunk.height]).toEqual([90, 60]);
    const small = await decodeImageFile(join(dir, 'x.png'), { maxSide: 90 });
    expect([small.width, small.height]).toEqual([5, 4]); // never enlarged
    expect(Array.from(fromBytes.data)).toEqual(Array.from(fromFile.data));
    expect(Array.from(fromUrl.data)).toEqual(Array.from(fromFile.data));
  });
});

describe('loader over JPEG files', () => {
  it('decodes, augments and batches files; a broken file fails the batch with its name; no leaks', async () => {
    for (let i = 0; i < 10; i++) await writeImage(join(dir, 'train', i % 2 ? 'happy' : 'sad', `${i}.jpg`), { width: 20, height: 24, value: i * 20 });
    const ds = await createNodeDatasetRegistry().resolve(`folder:${dir}`);
    const before = tf.memory().numTensors;
    const loader = createLoader(ds.splits.train!, { batchSize: 4, transform: trainTransform({ size: 16 }), seed: 1 });
    let n = 0;
    for await (const b of loader) {
      expect(b.images.shape.slice(1)).toEqual([16, 16, 3]);
      n += b.images.shape[0];
      disposeBatch(b);
    }
    expect(n).toBe(10);
    expect(tf.memory().numTensors).toBe(before);
    await writeText(join(dir, 'train', 'sad', '0.jpg'), 'garbage');
    const again = createLoader(ds.splits.train!, { batchSize: 10, transform: evalTransform({ size: 8 }) });
    await expect((async () => {
      for await (const b of again) disposeBatch(b);
    })()).rejects.toThrow(/0.jpg: cannot decode image/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('dataset plugin modules', () => {
  const pluginSource = (exportLine: string) => `
const plugin = {
  name: 'mine',
  labels: { expression: true, factors: [] },
  async load(location) {
    return { name: 'mine:' + location, plugin: 'mine', hasExpression: true, warnings: [], splits: {
      train: [{ id: 'a', expression: 3, image: { kind: 'pixels', width: 1, height: 1, channels: 1, data: new Uint8Array([9]) } }] } };
  },
};
${exportLine}
`;

  it('loads the named export datasetPlugin or the default export and registers it', async () => {
    await writeText(join(dir, 'named.mjs'), pluginSource('export const datasetPlugin = plugin;'));
    await writeText(join(dir, 'default.mjs'), pluginSource('export default plugin;'));
    const [named] = await loadDatasetPluginModule('./named.mjs', dir);
    expect(named!.name).toBe('mine');
    expect((await loadDatasetPluginModule(join(dir, 'default.mjs')))[0]!.name).toBe('mine');
    const reg = createNodeDatasetRegistry();
    await registerDatasetPluginModules(reg, [join(dir, 'named.mjs')]);
    const ds = await reg.resolve('mine:/anywhere');
    expect(ds.splits.train![0]!.expression).toBe(3);
  });

  it('explains what is wrong with a bad module', async () => {
    await writeText(join(dir, 'none.mjs'), 'export const x = 1;');
    await writeText(join(dir, 'bad.mjs'), 'export default { name: "bad" };');
    await expect(loadDatasetPluginModule(join(dir, 'none.mjs'))).rejects.toThrow(/exports neither 'datasetPlugin' nor a default export/);
    await expect(loadDatasetPluginModule(join(dir, 'bad.mjs'))).rejects.toThrow(/not a dataset plugin/);
    await expect(loadDatasetPluginModule(join(dir, 'missing.mjs'))).rejects.toThrow(DatasetSpecError);
  });
});
