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

  it.each([
    [{ ...good, format: 'tfjs' }, "field 'format' must be 'dfd-web'"],
    [{ ...good, formatVersion: 2 }, "field 'formatVersion' must be 1"],
    [{ ...good, model: '' }, "field 'model' must be a relative path"],
    [{ ...good, labels: [] }, "field 'labels' must be a non-empty string array"],
    [{ ...good, inputSize: 4.5 }, "field 'inputSize' must be a positive integer"],
    [{ ...good, mean: [0, 0] }, "field 'mean' must be three numbers"],
    [{ ...good, std: [1, 0, 1] }, "field 'std' must be three positive numbers"],
    [null, "field '(root)' must be an object"],
  ])('names the bad field (%#)', (value, message) => {
    expect(() => parseManifest(value, 'http://x/manifest.json')).toThrow(`http://x/manifest.json: ${message}`);
  });
});
