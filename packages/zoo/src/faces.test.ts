import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetSpecError } from '@dfd/datasets';
import { createNodeDatasetRegistry, decodeImageFile, loadDatasetPluginModule } from '@dfd/datasets/node';
import { cropFace } from './crop.js';
import { encodePng, facesDatasetPlugin, type FacesCacheEntry } from './faces.js';
import { loadZooDetector, loadZooLandmarker } from './node.js';
import { boxIou, faceCanvas } from '../../../tools/testing/face-canvas.js';

// faces:<spec> on a folder dataset made here: synthetic faces pasted off-centre on larger
// canvases (PNG), and one blank image without a face.
const work = mkdtempSync(join(tmpdir(), 'dfd-faces-'));
const root = join(work, 'data');
const cache = join(work, 'cache');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const faces = {
  'train/happy/a.png': { x: 200, y: 30, size: 160, seed: 1 },
  'train/neutral/b.png': { x: 20, y: 110, size: 150, seed: 5 },
};
const calls = { detector: 0, landmarker: 0 };
const registry = createNodeDatasetRegistry([
  facesDatasetPlugin({
    loadDetector: () => (calls.detector++, loadZooDetector()),
    loadLandmarker: () => (calls.landmarker++, loadZooLandmarker()),
  }),
]);

beforeAll(async () => {
  await tf.setBackend('cpu');
  for (const [rel, f] of Object.entries(faces)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), encodePng(faceCanvas(380, 300, f)));
  }
  mkdirSync(join(root, 'test/happy'), { recursive: true });
  writeFileSync(join(root, 'test/happy/c.png'), encodePng({ width: 200, height: 150, data: new Uint8Array(200 * 150 * 3).fill(128) }));
});

describe('faces: dataset plugin', () => {
  it('serves eye-levelled, cached face crops of every image; an image without a face is kept whole, with a warning', async () => {
    const spec = `faces:folder:${root}?cache=${cache}&detect-size=320&crop=128`;
    const ds = await registry.resolve(spec);
    expect(ds.name).toBe(spec);
    expect(ds.hasExpression).toBe(true);
    expect(calls).toEqual({ detector: 1, landmarker: 1 });
    const train = ds.splits.train!;
    expect(train.map((s) => s.expression).sort()).toEqual([3, 6]);
    for (const s of train) {
      expect(s.image.kind).toBe('file');
      const path = (s.image as { path: string }).path;
      expect(path.startsWith(cache)).toBe(true);
      const crop = await decodeImageFile(path);
      expect([crop.width, crop.height]).toEqual([128, 128]);
      // The crop is the one cropFace makes from the original at the cached box and eyes (PNG is lossless).
      const entry = JSON.parse(readFileSync(path.replace(/\.png$/, '.json'), 'utf8')) as FacesCacheEntry;
      const rel = Object.keys(faces).find((k) => s.id.endsWith(k.split('/').slice(-2).join('/'))) as keyof typeof faces;
      const f = faces[rel];
      expect(f).toBeDefined();
      expect(boxIou(entry.box!, { x: f.x + f.size / 8, y: f.y + f.size / 8, width: (f.size * 3) / 4, height: (f.size * 3) / 4 })).toBeGreaterThan(0.5);
      expect(entry.eyes!.left[0]).toBeLessThan(entry.eyes!.right[0]);
      const original = await decodeImageFile(join(root, rel));
      const expected = cropFace(original, entry.box!, { margin: 0.2, size: 128, eyes: entry.eyes! });
      expect(Buffer.compare(Buffer.from(crop.data), Buffer.from(expected.data))).toBe(0);
    }
    const test = ds.splits.test!;
    expect(test).toHaveLength(1);
    expect(test[0]!.image).toEqual({ kind: 'file', path: join(root, 'test/happy/c.png') });
    expect(ds.warnings.find((w) => w.kind === 'no-face')?.count).toBe(1);

    // Again: everything from the cache, the nets are not even loaded.
    const again = await registry.resolve(spec);
    expect(calls).toEqual({ detector: 1, landmarker: 1 });
    expect(again.splits.train!.map((s) => s.image)).toEqual(train.map((s) => s.image));

    // noface=skip drops the faceless image (same crops: noface is not part of the cache key).
    const skipped = await registry.resolve(`${spec}&noface=skip`, { allowEmpty: true });
    expect(skipped.splits.test).toEqual([]);
    expect(calls).toEqual({ detector: 1, landmarker: 1 });
  });

  it('passes other options to the wrapped spec, rejects bad ones, and loads as --dataset-plugin @dfd/zoo/faces', async () => {
    const only = await registry.resolve(`faces:folder:${join(root, 'train')}?cache=${cache}&detect-size=320&crop=128&split=train`);
    expect(Object.keys(only.splits)).toEqual(['train']);
    expect(only.splits.train).toHaveLength(2);
    await expect(registry.resolve(`faces:folder:${root}?cache=${cache}&margin=5`)).rejects.toThrow(DatasetSpecError);
    await expect(registry.resolve(`faces:folder:${root}?cache=${cache}&detect-size=300`)).rejects.toThrow(/multiple of 32/);
    await expect(registry.resolve(`faces:folder:${root}?cache=${cache}&noface=drop`)).rejects.toThrow(/noface=drop/);
    const [plugin] = await loadDatasetPluginModule('@dfd/zoo/faces');
    expect(plugin!.name).toBe('faces');
  });
});
