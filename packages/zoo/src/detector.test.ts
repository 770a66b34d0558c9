import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { ZooDetectOptionsError, nonMaxSuppression, type FaceBox, type TinyFaceDetector, type ZooImage } from './detector.js';
import { ZooCropError, cropFace } from './crop.js';
import { findZooPackage, loadZooDetector } from './node.js';
import { ZooRoleError, zooEntry, zooEntryFor } from './registry.js';
import { boxIou, faceCanvas } from '../../../tools/testing/face-canvas.js';

/**
 * The reference is face-api's own TinyFaceDetector (@vladmandic/face-api's Node build, a dev
 * dependency) on the same engine and CPU backend. Test images are made here: synthetic faces
 * (@dfd/datasets' renderFace) pasted off-centre on larger canvases of other sizes and shapes.
 */
interface FaceapiLib {
  nets: Record<string, { loadFromDisk(dir: string): Promise<void> }>;
  tinyFaceDetector(input: unknown, options: unknown): Promise<Array<{ score: number; box: { x: number; y: number; width: number; height: number } }>>;
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown;
}
const require = createRequire(import.meta.url);
let faceapi: FaceapiLib;
let detector: TinyFaceDetector;

async function reference(img: ZooImage, inputSize: number): Promise<FaceBox[]> {
  const x = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
  const dets = await faceapi.tinyFaceDetector(x, new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold: 0.5 }));
  x.dispose();
  return dets.map((d) => ({ x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height, score: d.score }));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceapiLib;
  await tf.setBackend('cpu');
  await faceapi.nets.tinyFaceDetector!.loadFromDisk(join(findZooPackage(zooEntry('faceapi:tiny-detector'))!.dir, 'model'));
  detector = await loadZooDetector();
});

describe('faceapi:tiny-detector', () => {
  it('is a registry entry with the detector role only', () => {
    expect(zooEntryFor('faceapi:tiny-detector', 'detector').manifest).toBe('model/tiny_face_detector_model-weights_manifest.json');
    expect(() => zooEntryFor('faceapi:tiny-detector', 'eife')).toThrow(ZooRoleError);
    expect(() => zooEntryFor('faceapi:expression', 'detector')).toThrow(/detectors: faceapi:tiny-detector/);
  });

  it("gives face-api's boxes (0.5 px) and scores (1e-4) on wide and tall images, 416 and 224 px input", async () => {
    const wide = faceCanvas(480, 330, [
      { x: 290, y: 30, size: 160, seed: 1 },
      { x: 20, y: 150, size: 120, seed: 5 },
    ]);
    const tall = faceCanvas(260, 400, [{ x: 40, y: 220, size: 150, seed: 3 }]);
    const cases: Array<[ZooImage, number]> = [
      [wide, 416],
      [tall, 416],
      [wide, 224],
    ];
    const before = tf.memory().numTensors;
    let found = 0;
    for (const [img, inputSize] of cases) {
      const ref = await reference(img, inputSize);
      const got = await detector.detect(img, { inputSize });
      expect(got).toHaveLength(ref.length);
      found += got.length;
      got.forEach((g, i) => {
        const r = ref[i]!;
        for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(g[k] - r[k])).toBeLessThan(0.5);
        expect(Math.abs(g.score - r.score)).toBeLessThan(1e-4);
        expect(g.score).toBeGreaterThan(0.5);
      });
    }
    // Parity on real detections, not on empty lists: the wide image's two faces at 416, the tall one's.
    expect(found).toBeGreaterThanOrEqual(3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('finds an off-centre face and crops it with a margin', async () => {
    const face = { x: 300, y: 40, size: 160, seed: 1 };
    const img = faceCanvas(520, 360, [face]);
    const boxes = await detector.detect(img, { inputSize: 320 });
    expect(boxes).toHaveLength(1);
    const box = boxes[0]!;
    // The drawn face (oval and hair) fills about the central 3/4 of the pasted square.
    const inner = { x: face.x + face.size / 8, y: face.y + face.size / 8, width: (face.size * 3) / 4, height: (face.size * 3) / 4 };
    expect(boxIou(box, inner)).toBeGreaterThan(0.5);
    expect(boxIou(box, { x: 0, y: 0, width: img.width, height: img.height })).toBeLessThan(0.15);
    const crop = cropFace(img, box, { margin: 0.2 });
    expect(crop.width).toBe(Math.round(Math.max(box.width, box.height) * 1.4));
    expect(crop.height).toBe(crop.width);
    expect(crop.centerX).toBeCloseTo(box.x + box.width / 2, 6);
    // The crop is that part of the image: its centre pixel is the image's pixel at the box centre.
    const c = Math.floor(crop.width / 2);
    const ix = Math.floor(crop.centerX - crop.side / 2 + ((c + 0.5) * crop.side) / crop.width);
    const iy = Math.floor(crop.centerY - crop.side / 2 + ((c + 0.5) * crop.side) / crop.width);
    for (let ch = 0; ch < 3; ch++) expect(Math.abs(crop.data[(c * crop.width + c) * 3 + ch]! - img.data[(iy * img.width + ix) * 3 + ch]!)).toBeLessThanOrEqual(8);
    // It holds the whole drawn face, and not much more than the pasted square.
    const region = { x: crop.centerX - crop.side / 2, y: crop.centerY - crop.side / 2, width: crop.side, height: crop.side };
    expect(region.x).toBeLessThanOrEqual(inner.x);
    expect(region.y).toBeLessThanOrEqual(inner.y);
    expect(region.x + region.width).toBeGreaterThanOrEqual(inner.x + inner.width);
    expect(region.y + region.height).toBeGreaterThanOrEqual(inner.y + inner.height);
    expect(boxIou(region, { x: face.x, y: face.y, width: face.size, height: face.size })).toBeGreaterThan(0.6);
  });

  it('finds nothing on a blank image', async () => {
    const blank = { width: 200, height: 150, data: new Uint8Array(200 * 150 * 3).fill(128) };
    expect(await detector.detect(blank, { inputSize: 224 })).toEqual([]);
  });

  it('rejects bad options with typed errors', async () => {
    const img = faceCanvas(64, 64, []);
    await expect(detector.detect(img, { inputSize: 300 })).rejects.toThrow(ZooDetectOptionsError);
    await expect(detector.detect(img, { scoreThreshold: 1 })).rejects.toThrow(/between 0 and 1/);
    await expect(detector.detect({ width: 10, height: 10, data: new Uint8Array(5) })).rejects.toThrow(/expected width \* height \* 3/);
    expect(() => cropFace(img, { x: 0, y: 0, width: 0, height: 10 })).toThrow(ZooCropError);
    expect(() => cropFace(img, { x: 0, y: 0, width: 10, height: 10 }, { margin: -1 })).toThrow(/margin/);
  });
});

describe('cropFace', () => {
  const W = 40;
  const H = 30;
  const img: ZooImage = { width: W, height: H, data: new Uint8Array(W * H * 3) };
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) img.data.set([x * 5, y * 7, 100], (y * W + x) * 3);

  it('copies pixels exactly at integer boxes, with the margin, repeating the border outside', () => {
    const crop = cropFace(img, { x: 10, y: 8, width: 10, height: 10 }, { margin: 0.5 });
    expect([crop.width, crop.height, crop.side]).toEqual([20, 20, 20]);
    // Crop pixel (i, j) is image pixel (5 + i, 3 + j).
    expect(Array.from(crop.data.subarray(0, 3))).toEqual([25, 21, 100]);
    expect(Array.from(crop.data.subarray((19 * 20 + 19) * 3, (19 * 20 + 19) * 3 + 3))).toEqual([24 * 5, 22 * 7, 100]);
    const edge = cropFace(img, { x: -5, y: 0, width: 10, height: 10 }, { margin: 0 });
    expect(Array.from(edge.data.subarray(0, 3))).toEqual([0, 0, 100]);
  });

  it('levels the eyes: a 90 degree eye line samples the image turned by 90 degrees', () => {
    const eyes = { left: [20, 10] as const, right: [20, 20] as const };
    const crop = cropFace(img, { x: 15, y: 10, width: 10, height: 10 }, { margin: 0, eyes });
    expect(crop.angle).toBeCloseTo(Math.PI / 2, 12);
    // Moving right in the crop moves down in the image (y grows by 7 per pixel), x stays.
    const at = (i: number, j: number) => Array.from(crop.data.subarray((j * 10 + i) * 3, (j * 10 + i) * 3 + 2));
    expect(at(1, 5)[1]! - at(0, 5)[1]!).toBe(7);
    expect(at(1, 5)[0]).toBe(at(0, 5)[0]);
    // Moving down in the crop moves left in the image.
    expect(at(5, 1)[0]! - at(5, 0)[0]!).toBe(-5);
  });

  it('NMS keeps the best of overlapping boxes and both of disjoint ones', () => {
    const boxes = [
      { x: 0, y: 0, width: 10, height: 10 },
      { x: 1, y: 1, width: 10, height: 10 },
      { x: 50, y: 50, width: 10, height: 10 },
    ];
    expect(nonMaxSuppression(boxes, [0.6, 0.9, 0.7], 0.4)).toEqual([1, 2]);
  });
});
