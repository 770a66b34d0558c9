import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeDatasetRegistry, decodeImageFile } from '@dfd/datasets/node';
import { encodePng, frameDataset } from './faces.js';
import { frameImage, parseFraming, scaleImage } from './framing.js';
import { loadZooDetector, loadZooLandmarker } from './node.js';
import { faceCanvas } from '../../../tools/testing/face-canvas.js';

// A folder dataset made here: a synthetic face on a large canvas, the same face as a 48x48 tight
// crop (FER2013-sized), and a blank image.
const work = mkdtempSync(join(tmpdir(), 'dfd-framing-'));
const root = join(work, 'data');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const nets = { loadDetector: () => loadZooDetector(), loadLandmarker: () => loadZooLandmarker() };

beforeAll(async () => {
  await tf.setBackend('cpu');
  const big = faceCanvas(380, 300, { x: 120, y: 60, size: 170, seed: 3 });
  const tight = scaleImage(faceCanvas(170, 170, { x: 0, y: 0, size: 170, seed: 3 }), 48, 48);
  for (const [rel, img] of [
    ['test/happy/big.png', big],
    ['test/happy/tight.png', tight],
    ['test/neutral/blank.png', { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(128) }],
  ] as const) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), encodePng(img));
  }
});

describe('frameDataset', () => {
  it('align: counts each case, and the source, a target and predict get the same bytes', async () => {
    const framing = parseFraming({ kind: 'align', size: 64 });
    const registry = createNodeDatasetRegistry();
    const cacheDir = join(work, 'cache');
    const source = await frameDataset(await registry.resolve(`folder:${root}`), framing, { ...nets, cacheDir });
    const counts = source.alignCounts!;
    expect(counts.detected + counts.upscaled + counts['whole-image']).toBe(3);
    expect(counts.detected).toBeGreaterThanOrEqual(1);
    expect(counts['whole-image']).toBeGreaterThanOrEqual(1);
    expect(source.warnings.find((w) => w.kind === 'framing')?.message).toMatch(/detected after upscaling/);
    const files = source.splits.test!.map((s) => (s.image as { path: string }).path);
    // A target resolved separately (fresh cache, so it frames again) gives the same bytes.
    const target = await frameDataset(await registry.resolve(`folder:${root}`), framing, { ...nets, cacheDir: join(work, 'cache2') });
    const targetFiles = target.splits.test!.map((s) => (s.image as { path: string }).path);
    for (let i = 0; i < files.length; i++) expect(readFileSync(targetFiles[i]!)).toEqual(readFileSync(files[i]!));
    // predict's path: frameImage on the decoded file, same pixels as the cached PNG.
    const detector = await loadZooDetector();
    const landmarker = await loadZooLandmarker();
    try {
      const decodedBig = await decodeImageFile(join(root, 'test/happy/big.png'));
      const direct = await frameImage(decodedBig, framing, { detector, landmarker });
      expect(direct.case).toBe('detected');
      const idx = source.splits.test!.findIndex((s) => s.id.includes('big'));
      expect(idx).toBeGreaterThanOrEqual(0);
      const cached = await decodeImageFile(files[idx]!);
      expect(Buffer.from(cached.data)).toEqual(Buffer.from(direct.image.data));
    } finally {
      detector.dispose();
      landmarker.dispose();
    }
  }, 120_000);

  it('resize is the dataset itself; centre-crop needs no nets', async () => {
    const registry = createNodeDatasetRegistry();
    const ds = await registry.resolve(`folder:${root}`);
    expect(await frameDataset(ds, parseFraming({ kind: 'resize' }))).toBe(ds);
    const c = await frameDataset(ds, parseFraming({ kind: 'centre-crop', scale: 0.5 }), { cacheDir: join(work, 'cc') });
    const big = c.splits.test!.find((s) => s.id.includes('big'))!;
    const img = await decodeImageFile((big.image as { path: string }).path);
    expect([img.width, img.height]).toEqual([150, 150]);
  });
});
