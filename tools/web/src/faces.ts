import { normalize, resizeBox, toRgb } from '@dfd/datasets';
import type { FaceBox, ZooImage } from '@dfd/zoo';
import type { RgbaImage } from './preprocess.js';

/** Face detection settings of the predict page (`?detect=0`, `?detect-size=320`, `?margin=0.3`). */
export interface FaceSettings {
  /** false: the page ignores the manifest's detector and centre-crops (`?detect=0`). */
  enabled: boolean;
  /** Detector input side, a multiple of 32 (default 416; 320 / 224 are faster, miss small faces). */
  inputSize: number;
  /** Detector score threshold (default 0.5). */
  scoreThreshold: number;
  /** Margin added on each side of a face box, as a fraction of its longer side (default 0.2, as `dfd predict --detect`). */
  margin: number;
  /** At most this many faces are predicted per photo (the largest ones). */
  maxFaces: number;
}

/** Reads {@link FaceSettings} from the page's query string; a bad value is an error naming the parameter. */
export function faceSettingsFromUrl(search: string): FaceSettings {
  const params = new URLSearchParams(search);
  const num = (name: string, fallback: number, ok: (n: number) => boolean, want: string): number => {
    const raw = params.get(name);
    if (raw === null || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new RangeError(`?${name}=${raw}: must be ${want}`);
    return n;
  };
  const detect = params.get('detect');
  if (detect !== null && !['0', '1', ''].includes(detect)) throw new RangeError(`?detect=${detect}: must be 0 (off) or 1 (on, the default when the model folder has a detector)`);
  return {
    enabled: detect !== '0',
    inputSize: num('detect-size', 416, (n) => Number.isInteger(n) && n >= 32 && n % 32 === 0, 'a positive multiple of 32 (416, 320, 224)'),
    scoreThreshold: num('detect-threshold', 0.5, (n) => n > 0 && n < 1, 'between 0 and 1 (exclusive)'),
    margin: num('margin', 0.2, (n) => n >= 0 && n <= 2, 'between 0 and 2 (a fraction of the face box)'),
    maxFaces: num('max-faces', 8, (n) => Number.isInteger(n) && n >= 1, 'a positive integer'),
  };
}

/** The RGB bytes (3 per pixel) the zoo detector takes, from canvas RGBA. */
export function rgbaToRgb(img: RgbaImage): ZooImage {
  return toRgb(img.width, img.height, 4, img.data);
}

/** The faces to predict: largest first (the one the bars show), at most `max`. */
export function orderFaces(boxes: readonly FaceBox[], max: number): FaceBox[] {
  return [...boxes].sort((a, b) => b.width * b.height - a.width * a.height || b.score - a.score).slice(0, max);
}

/**
 * The network input for one face crop (`cropFace`'s square, RGB): resized to `size` and
 * normalised with @dfd/datasets' evaluation transform, as `prepareInput` does for the centre crop.
 */
export function prepareFaceInput(crop: ZooImage, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const resized = resizeBox(crop, { x: 0, y: 0, width: crop.width, height: crop.height }, size, size);
  return normalize({ mean, std })(resized).data;
}

/** Text drawn over a face box: the predicted label and its probability. */
export function faceLabel(labels: readonly string[], probs: readonly number[]): string {
  const top = probs.indexOf(Math.max(...probs));
  return `${labels[top]} ${(probs[top]! * 100).toFixed(0)}%`;
}
