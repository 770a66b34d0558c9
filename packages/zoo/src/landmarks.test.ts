import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TinyFaceDetector } from './detector.js';
import { cropFace } from './crop.js';
import { eyeCentres, type FaceLandmarker } from './landmarks.js';
import { findZooPackage, loadZooDetector, loadZooLandmarker } from './node.js';
import { ZooRoleError, zooEntry, zooEntryFor } from './registry.js';
import { faceCanvas } from '../../../tools/testing/face-canvas.js';

/** Reference: face-api's own FaceLandmark68TinyNet (its Node build) on the same engine and CPU backend. */
interface FaceapiLib {
  nets: Record<string, { loadFromDisk(dir: string): Promise<void>; detectLandmarks(input: unknown): Promise<{ positions: Array<{ x: number; y: number }> }> }>;
}
const require = createRequire(import.meta.url);
let faceapi: FaceapiLib;
let landmarker: FaceLandmarker;
let detector: TinyFaceDetector;

const degrees = (e: { left: [number, number]; right: [number, number] }) => (Math.atan2(e.right[1] - e.left[1], e.right[0] - e.left[0]) * 180) / Math.PI;

beforeAll(async () => {
  await tf.setBackend('cpu');
  faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceapiLib;
  await tf.setBackend('cpu');
  await faceapi.nets.faceLandmark68TinyNet!.loadFromDisk(join(findZooPackage(zooEntry('faceapi:landmarks-tiny'))!.dir, 'model'));
  landmarker = await loadZooLandmarker();
  detector = await loadZooDetector();
});

describe('faceapi:landmarks-tiny', () => {
  it('is a registry entry with the landmarks role', () => {
    expect(zooEntryFor('faceapi:landmarks-tiny', 'landmarks').inputSize).toBe(112);
    expect(() => zooEntryFor('faceapi:tiny-detector', 'landmarks')).toThrow(ZooRoleError);
    expect(() => zooEntryFor('faceapi:tiny-detector', 'landmarks')).toThrow(/landmark nets: faceapi:landmarks-tiny/);
  });

  it("gives face-api's 68 points (0.01 px) on wide, tall and square face crops", async () => {
    const img = faceCanvas(200, 200, { x: 20, y: 20, size: 160, seed: 2 });
    const before = tf.memory().numTensors;
    for (const [w, h] of [
      [150, 120],
      [110, 150],
      [140, 140],
    ] as const) {
      const crop = cropFace(img, { x: 100 - w / 2, y: 100 - h / 2, width: w, height: h }, { margin: 0 });
      // A non-square face region: the crop's central w x h pixels.
      const data = new Uint8Array(w * h * 3);
      const ox = Math.floor((crop.width - w) / 2);
      const oy = Math.floor((crop.height - h) / 2);
      for (let y = 0; y < h; y++) data.set(crop.data.subarray(((oy + y) * crop.width + ox) * 3, ((oy + y) * crop.width + ox + w) * 3), y * w * 3);
      const face = { width: w, height: h, data };
      const x = tf.tensor3d(data, [h, w, 3], 'int32');
      const ref = (await faceapi.nets.faceLandmark68TinyNet!.detectLandmarks(x)).positions;
      x.dispose();
      const got = await landmarker.landmarksOf(face);
      expect(got).toHaveLength(68);
      let maxDiff = 0;
      got.forEach(([px, py], i) => (maxDiff = Math.max(maxDiff, Math.abs(px - ref[i]!.x), Math.abs(py - ref[i]!.y))));
      expect(maxDiff).toBeLessThan(0.01);
      // Not degenerate: the points spread over the face.
      expect(Math.max(...got.map((p) => p[0])) - Math.min(...got.map((p) => p[0]))).toBeGreaterThan(w / 3);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('measures a tilted face and levels its eyes in the crop', async () => {
    const upright = faceCanvas(360, 300, { x: 170, y: 60, size: 160, seed: 2 });
    // The whole image turned by 20 degrees about the face centre (cropFace samples along the eye line).
    const tilt = (20 * Math.PI) / 180;
    const turned = cropFace(upright, { x: 250 - 150, y: 140 - 150, width: 300, height: 300 }, { margin: 0, eyes: { left: [0, 0], right: [Math.cos(-tilt), Math.sin(-tilt)] } });
    const angles: number[] = [];
    for (const img of [upright, turned]) {
      const [box] = await detector.detect(img, { inputSize: 320 });
      expect(box).toBeDefined();
      const eyes = eyeCentres(await landmarker.landmarks(img, box!));
      angles.push(degrees(eyes));
      const aligned = cropFace(img, box!, { margin: 0.2, eyes });
      // In the crop, the face box is the central square of side crop / 1.4 (20% margin each side).
      const s = aligned.width / 1.4;
      const inner = { x: (aligned.width - s) / 2, y: (aligned.height - s) / 2, width: s, height: s };
      angles.push(degrees(eyeCentres(await landmarker.landmarks(aligned, inner))));
    }
    console.log(`eye-line angles (deg): upright ${angles[0]!.toFixed(1)}, upright aligned ${angles[1]!.toFixed(1)}, turned ${angles[2]!.toFixed(1)}, turned aligned ${angles[3]!.toFixed(1)}`);
    // Turning the image by 20 degrees turns the measured eye line by about 20 degrees...
    expect(Math.abs(angles[2]! - angles[0]! - 20)).toBeLessThan(6);
    // ...and the aligned crop has level eyes again.
    expect(Math.abs(angles[3]!)).toBeLessThan(6);
    expect(Math.abs(angles[3]!)).toBeLessThan(Math.abs(angles[2]!) / 3);
  });
});
