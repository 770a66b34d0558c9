import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { ZooWeightsError } from './nets.js';

/**
 * face-api.js's TinyFaceDetector (TinyYolov2 with depthwise-separable convs, one class), rebuilt
 * on tfjs-core ops over its weight map. Ops, preprocessing (zero padding to a square at the
 * bottom/right, bilinear resize, mean subtraction, /255), box decoding with its 5 anchors and the
 * greedy NMS follow face-api's source (src/tinyYolov2/TinyYolov2Base.ts, src/tinyFaceDetector,
 * src/dom/NetInput.ts, src/ops), so boxes and scores agree with the library (tested against it).
 */

/** An RGB image, HWC, `width * height * 3` bytes (structurally dfd's `RgbImage`). */
export interface ZooImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A detected face: box in the original image's pixel coordinates (x, y = top-left corner). */
export interface FaceBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Detector confidence in (0, 1). */
  score: number;
}

/** Options of {@link TinyFaceDetector.detect}. */
export interface DetectOptions {
  /** Side the image is padded and resized to: a multiple of 32 (face-api: 416 default; 320, 224 are faster). */
  inputSize?: number;
  /** Boxes scoring at or below this are dropped (face-api default 0.5). */
  scoreThreshold?: number;
}

/** Bad detector options. */
export class ZooDetectOptionsError extends DfdError {
  constructor(message: string) {
    super('E_ZOO_DETECT_OPTIONS', message);
  }
}

/** face-api's TinyFaceDetector anchors (width, height in grid cells). */
export const TINY_DETECTOR_ANCHORS: ReadonlyArray<readonly [number, number]> = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
];
/** Mean RGB face-api subtracts before /255 for this detector. */
export const TINY_DETECTOR_MEAN_RGB = [117.001, 114.697, 97.404] as const;
/** face-api's NMS IoU threshold for the tiny detector. */
export const TINY_DETECTOR_IOU = 0.4;

function w(map: tf.NamedTensorMap, name: string): tf.Tensor {
  const t = map[name];
  if (!t) throw new ZooWeightsError(`weight '${name}' missing from the detector weights; the installed package is not the version dfd expects (dfd models list).`);
  return t;
}

function leaky(x: tf.Tensor4D): tf.Tensor4D {
  const min = tf.mul(x, tf.scalar(0.10000000149011612));
  return tf.add(tf.relu(tf.sub(x, min)), min);
}

function sepConv(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D): tf.Tensor4D {
  const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  const out = tf.separableConv2d(padded, w(map, `${p}/depthwise_filter`) as tf.Tensor4D, w(map, `${p}/pointwise_filter`) as tf.Tensor4D, [1, 1], 'valid');
  return leaky(tf.add(out, w(map, `${p}/bias`)));
}

function conv(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D): tf.Tensor4D {
  return tf.add(tf.conv2d(x, w(map, `${p}/filters`) as tf.Tensor4D, [1, 1], 'valid'), w(map, `${p}/bias`));
}

/**
 * The raw detector output: [N, S, S, 3] preprocessed input (face-api scaling: (pixel - mean) / 255)
 * -> [N, S/32, S/32, 25] (5 anchors x (tx, ty, tw, th, objectness)).
 */
export function tinyDetectorForward(map: tf.NamedTensorMap, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    let out = leaky(conv(map, 'conv0', x));
    out = tf.maxPool(out, [2, 2], [2, 2], 'same');
    for (const p of ['conv1', 'conv2', 'conv3', 'conv4']) {
      out = sepConv(map, p, out);
      out = tf.maxPool(out, [2, 2], [2, 2], 'same');
    }
    out = sepConv(map, 'conv5', out);
    out = tf.maxPool(out, [2, 2], [1, 1], 'same');
    // face-api's tiny face detector has 7 filter sizes: no conv6 / conv7.
    return conv(map, 'conv8', out);
  });
}

/**
 * face-api's preprocessing of one image [1, H, W, 3] (0..255): zero-pad the short side at the
 * bottom/right to a square, resize bilinearly to `inputSize`, subtract the mean RGB, /255.
 */
export function tinyDetectorInput(image: tf.Tensor4D, inputSize: number): tf.Tensor4D {
  return tf.tidy(() => {
    let x = tf.cast(image, 'float32') as tf.Tensor4D;
    const [, h, wd] = x.shape;
    if (h !== wd) {
      const diff = Math.abs(h - wd);
      x = tf.pad(x, h > wd ? [[0, 0], [0, 0], [0, diff], [0, 0]] : [[0, 0], [0, diff], [0, 0], [0, 0]]);
    }
    if (x.shape[1] !== inputSize || x.shape[2] !== inputSize) x = tf.image.resizeBilinear(x, [inputSize, inputSize], false, false);
    return tf.div(tf.sub(x, tf.tensor1d([...TINY_DETECTOR_MEAN_RGB])), 255) as tf.Tensor4D;
  });
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

interface RelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

function iou(a: RelBox, b: RelBox): number {
  const wd = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = wd * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/** Greedy NMS as face-api does it (highest score first; drops boxes with IoU above `threshold`). Returns kept indices, best first. */
export function nonMaxSuppression(boxes: ReadonlyArray<RelBox>, scores: readonly number[], threshold: number): number[] {
  let order = scores
    .map((score, i) => ({ score, i }))
    .sort((a, b) => a.score - b.score)
    .map((c) => c.i);
  const pick: number[] = [];
  while (order.length > 0) {
    const cur = order.pop()!;
    pick.push(cur);
    order = order.filter((j) => iou(boxes[cur]!, boxes[j]!) <= threshold);
  }
  return pick;
}

/**
 * Decodes one image's raw output [S/32, S/32, 25] (as a flat array) into boxes relative to the
 * image (0..1 of its width / height) with scores above `scoreThreshold`, after NMS.
 */
export function decodeTinyDetections(raw: ArrayLike<number>, numCells: number, image: { width: number; height: number }, inputSize: number, scoreThreshold: number): FaceBox[] {
  // face-api: the image as it sits in the padded square (rounded), and the correction to its own frame.
  const scale = inputSize / Math.max(image.width, image.height);
  const rw = Math.round(image.width * scale);
  const rh = Math.round(image.height * scale);
  const side = Math.max(rw, rh);
  const cx = side / rw;
  const cy = side / rh;
  const A = TINY_DETECTOR_ANCHORS.length;
  const boxes: RelBox[] = [];
  const scores: number[] = [];
  for (let row = 0; row < numCells; row++) {
    for (let col = 0; col < numCells; col++) {
      for (let a = 0; a < A; a++) {
        const o = ((row * numCells + col) * A + a) * 5;
        const score = sigmoid(raw[o + 4]!);
        if (!(score > scoreThreshold)) continue;
        const ctX = ((col + sigmoid(raw[o]!)) / numCells) * cx;
        const ctY = ((row + sigmoid(raw[o + 1]!)) / numCells) * cy;
        const bw = ((Math.exp(raw[o + 2]!) * TINY_DETECTOR_ANCHORS[a]![0]) / numCells) * cx;
        const bh = ((Math.exp(raw[o + 3]!) * TINY_DETECTOR_ANCHORS[a]![1]) / numCells) * cy;
        boxes.push({ x: ctX - bw / 2, y: ctY - bh / 2, width: bw, height: bh });
        scores.push(score);
      }
    }
  }
  return nonMaxSuppression(boxes, scores, TINY_DETECTOR_IOU).map((i) => {
    const b = boxes[i]!;
    return { x: b.x * image.width, y: b.y * image.height, width: b.width * image.width, height: b.height * image.height, score: scores[i]! };
  });
}

/** Checks and fills detector options (face-api's defaults: 416, 0.5). */
export function detectOptions(o: DetectOptions = {}): Required<DetectOptions> {
  const inputSize = o.inputSize ?? 416;
  const scoreThreshold = o.scoreThreshold ?? 0.5;
  if (!Number.isInteger(inputSize) || inputSize < 32 || inputSize % 32 !== 0) throw new ZooDetectOptionsError(`detector input size ${inputSize}: must be a positive multiple of 32 (416, 320, 224, ...).`);
  if (!(scoreThreshold > 0 && scoreThreshold < 1)) throw new ZooDetectOptionsError(`detector score threshold ${scoreThreshold}: must be between 0 and 1 (exclusive).`);
  return { inputSize, scoreThreshold };
}

/** An image as a [1, H, W, 3] tensor (0..255). */
export function imageTensor(image: ZooImage): tf.Tensor4D {
  if (image.data.length !== image.width * image.height * 3) throw new ZooDetectOptionsError(`image data has ${image.data.length} bytes, expected width * height * 3 = ${image.width * image.height * 3}.`);
  return tf.tensor4d(image.data, [1, image.height, image.width, 3], 'int32');
}

/** face-api's TinyFaceDetector on its own weights (`faceapi:tiny-detector`; load with `loadZooDetector` from `@dfd/zoo/node`). */
export class TinyFaceDetector {
  readonly id = 'faceapi:tiny-detector';

  constructor(private readonly weights: tf.NamedTensorMap) {
    for (const n of ['conv0/filters', 'conv8/filters']) w(weights, n);
  }

  /** Faces in one image (RGB bytes, or a [H, W, 3] / [1, H, W, 3] tensor in 0..255), best first, boxes in its pixels. */
  async detect(image: ZooImage | tf.Tensor3D | tf.Tensor4D, options?: DetectOptions): Promise<FaceBox[]> {
    const { inputSize, scoreThreshold } = detectOptions(options);
    const x4 = image instanceof tf.Tensor ? (image.rank === 3 ? tf.expandDims(image, 0) : image) as tf.Tensor4D : imageTensor(image);
    if (x4.rank !== 4 || x4.shape[0] !== 1 || x4.shape[3] !== 3) throw new ZooDetectOptionsError(`detect takes one RGB image ([H, W, 3] or [1, H, W, 3]), got shape [${x4.shape.join(', ')}].`);
    const height = x4.shape[1];
    const width = x4.shape[2];
    const out = tf.tidy(() => tinyDetectorForward(this.weights, tinyDetectorInput(x4, inputSize)));
    if (x4 !== image) x4.dispose();
    const raw = await out.data();
    const numCells = out.shape[1];
    out.dispose();
    return decodeTinyDetections(raw, numCells, { width, height }, inputSize, scoreThreshold);
  }

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(Object.values(this.weights));
  }
}
