import { describe, expect, it } from 'vitest';
import { Rng } from '@dfd/core';
import { cropFace } from '@dfd/zoo';
import { faceLabel, faceSettingsFromUrl, orderFaces, prepareFaceInput, rgbaToRgb } from './faces.js';
import { prepareInput } from './preprocess.js';

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

function randomRgba(width: number, height: number, seed: number) {
  const rng = new Rng(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : rng.int(256);
  return { data, width, height };
}

describe('face detection helpers of the predict page', () => {
  it('settings: defaults as dfd predict --detect, query overrides, bad values name the parameter', () => {
    expect(faceSettingsFromUrl('')).toEqual({ enabled: true, inputSize: 416, scoreThreshold: 0.5, margin: 0.2, maxFaces: 8 });
    expect(faceSettingsFromUrl('?detect=0&detect-size=320&detect-threshold=0.3&margin=0.5&max-faces=2')).toEqual({ enabled: false, inputSize: 320, scoreThreshold: 0.3, margin: 0.5, maxFaces: 2 });
    expect(() => faceSettingsFromUrl('?detect-size=300')).toThrow('?detect-size=300: must be a positive multiple of 32');
    expect(() => faceSettingsFromUrl('?detect-threshold=1')).toThrow('?detect-threshold=1: must be between 0 and 1');
    expect(() => faceSettingsFromUrl('?margin=-1')).toThrow('?margin=-1: must be between 0 and 2');
    expect(() => faceSettingsFromUrl('?detect=yes')).toThrow('?detect=yes: must be 0 (off) or 1');
  });

  it('RGBA -> RGB drops alpha only', () => {
    const img = randomRgba(3, 2, 4);
    const rgb = rgbaToRgb(img);
    expect([rgb.width, rgb.height, rgb.data.length]).toEqual([3, 2, 18]);
    for (let i = 0; i < 6; i++) expect(Array.from(rgb.data.subarray(i * 3, i * 3 + 3))).toEqual(Array.from(img.data.subarray(i * 4, i * 4 + 3)));
  });

  it('orders faces largest first (score breaks ties) and keeps at most max', () => {
    const b = (width: number, score: number) => ({ x: 0, y: 0, width, height: width, score });
    const boxes = [b(10, 0.9), b(30, 0.6), b(20, 0.7), b(30, 0.8)];
    expect(orderFaces(boxes, 3)).toEqual([b(30, 0.8), b(30, 0.6), b(20, 0.7)]);
    expect(boxes[0]).toEqual(b(10, 0.9));
  });

  it('a face crop becomes the same input as the centre-crop path given that square', () => {
    // An unrotated, margin-free crop of a square box at whole pixels is that square of the image.
    const img = randomRgba(40, 30, 7);
    const crop = cropFace(rgbaToRgb(img), { x: 12, y: 5, width: 20, height: 20 }, { margin: 0 });
    expect([crop.width, crop.height]).toEqual([20, 20]);
    const viaFace = prepareFaceInput(crop, 16, MEAN, STD);
    const viaBox = prepareInput(img, { x: 12, y: 5, size: 20 }, 16, MEAN, STD);
    expect(viaFace).toHaveLength(16 * 16 * 3);
    let max = 0;
    for (let i = 0; i < viaBox.length; i++) max = Math.max(max, Math.abs(viaFace[i]! - viaBox[i]!));
    expect(max).toBeLessThan(1e-6);
  });

  it('labels a face with its top class and probability', () => {
    expect(faceLabel(['a', 'b', 'c'], [0.2, 0.7, 0.1])).toBe('b 70%');
  });
});
