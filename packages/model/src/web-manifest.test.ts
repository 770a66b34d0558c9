import { describe, expect, it } from 'vitest';
import { parseManifest } from './web-manifest.js';

const good = {
  format: 'dfd-web',
  formatVersion: 1,
  model: 'model.json',
  labels: ['a', 'b'],
  inputSize: 48,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

describe('parseManifest', () => {
  it('accepts what dfd export writes', () => {
    expect(parseManifest(good, 'm.json')).toEqual(good);
  });

  it('accepts the face detection fields, and manifests written before them (no detection)', () => {
    const faces = { ...good, faceDetector: 'faces/tiny_face_detector_model-weights_manifest.json', faceLandmarks: 'faces/face_landmark_68_tiny_model-weights_manifest.json' };
    expect(parseManifest(faces, 'm.json')).toEqual(faces);
    expect(parseManifest({ ...good, faceDetector: 'faces/d.json' }, 'm.json').faceLandmarks).toBeUndefined();
    expect(parseManifest(good, 'm.json').faceDetector).toBeUndefined();
  });

  it.each([
    [{ ...good, format: 'tfjs' }, "field 'format' must be 'dfd-web'"],
    [{ ...good, formatVersion: 2 }, "field 'formatVersion' must be 1"],
    [{ ...good, model: '' }, "field 'model' must be a relative path"],
    [{ ...good, labels: [] }, "field 'labels' must be a non-empty string array"],
    [{ ...good, inputSize: 4.5 }, "field 'inputSize' must be a positive integer"],
    [{ ...good, mean: [0, 0] }, "field 'mean' must be three numbers"],
    [{ ...good, std: [1, 0, 1] }, "field 'std' must be three positive numbers"],
    [{ ...good, faceDetector: '' }, "field 'faceDetector' must be a relative path"],
    [{ ...good, faceDetector: '../faces/d.json' }, "field 'faceDetector' must be a relative path"],
    [{ ...good, faceDetector: 'https://x.test/d.json' }, "field 'faceDetector' must be a relative path"],
    [{ ...good, faceDetector: 'faces/d.json', faceLandmarks: 7 }, "field 'faceLandmarks' must be a relative path"],
    [{ ...good, faceLandmarks: 'faces/l.json' }, "field 'faceLandmarks' must be absent without 'faceDetector'"],
    [null, "field '(root)' must be an object"],
  ])('names the bad field (%#)', (value, message) => {
    expect(() => parseManifest(value, 'http://x/manifest.json')).toThrow(`http://x/manifest.json: ${message}`);
  });
});
