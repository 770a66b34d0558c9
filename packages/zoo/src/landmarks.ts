import * as tf from '@tensorflow/tfjs-core';
import { imageTensor, type ZooImage } from './detector.js';
import { ZooWeightsError } from './nets.js';

/**
 * face-api.js's FaceLandmark68TinyNet (3 dense blocks of separable convs, 128-d pooled features,
 * fc to 68 (x, y) points), rebuilt on tfjs-core ops over its weight map. Ops, preprocessing
 * (zero padding to a centred square, bilinear resize to 112, mean subtraction, /255) and the
 * un-padding of the points follow face-api's source (src/faceFeatureExtractor/
 * TinyFaceFeatureExtractor.ts, denseBlock.ts, src/faceLandmarkNet/FaceLandmark68NetBase.ts).
 */

const MEAN_RGB = [122.782, 117.001, 104.298] as const;
const SIZE = 112;

function w(map: tf.NamedTensorMap, name: string): tf.Tensor {
  const t = map[name];
  if (!t) throw new ZooWeightsError(`weight '${name}' missing from the landmark weights; the installed package is not the version dfd expects (dfd models list).`);
  return t;
}

function sepConv(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  const out = tf.separableConv2d(x, w(map, `${p}/depthwise_filter`) as tf.Tensor4D, w(map, `${p}/pointwise_filter`) as tf.Tensor4D, stride, 'same');
  return tf.add(out, w(map, `${p}/bias`));
}

function denseBlock3(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D, first: boolean): tf.Tensor4D {
  const out1 = tf.relu(first ? tf.add(tf.conv2d(x, w(map, `${p}/conv0/filters`) as tf.Tensor4D, 2, 'same'), w(map, `${p}/conv0/bias`)) : sepConv(map, `${p}/conv0`, x, 2)) as tf.Tensor4D;
  const out2 = sepConv(map, `${p}/conv1`, out1, 1);
  const out3 = sepConv(map, `${p}/conv2`, tf.relu(tf.add<tf.Tensor4D>(out1, out2)), 1);
  return tf.relu(tf.add<tf.Tensor4D>(out1, tf.add(out2, out3)));
}

/** The raw net: [N, 112, 112, 3] in face-api scaling -> [N, 136] (x0, y0, x1, ...) relative to the padded square. */
export function landmarks68TinyForward(map: tf.NamedTensorMap, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    let out = denseBlock3(map, 'dense0', x, true);
    out = denseBlock3(map, 'dense1', out, false);
    out = denseBlock3(map, 'dense2', out, false);
    out = tf.avgPool(out, [14, 14], [2, 2], 'valid');
    const feats = tf.reshape(out, [out.shape[0], -1]) as tf.Tensor2D;
    return tf.add(tf.matMul(feats, w(map, 'fc/weights') as tf.Tensor2D), w(map, 'fc/bias')) as tf.Tensor2D;
  });
}

/** face-api's preprocessing of one face [1, h, w, 3] (0..255): zero-pad to a centred square, resize to 112, - mean, /255. */
export function landmarksInput(face: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    let x = tf.cast(face, 'float32') as tf.Tensor4D;
    const [, h, wd] = x.shape;
    if (h !== wd) {
      const diff = Math.abs(h - wd);
      const after = Math.round(diff * 0.5);
      const before = diff - after;
      x = tf.pad(x, h > wd ? [[0, 0], [0, 0], [before, after], [0, 0]] : [[0, 0], [before, after], [0, 0], [0, 0]]);
    }
    if (x.shape[1] !== SIZE || x.shape[2] !== SIZE) x = tf.image.resizeBilinear(x, [SIZE, SIZE], false, false);
    return tf.div(tf.sub(x, tf.tensor1d([...MEAN_RGB])), 255) as tf.Tensor4D;
  });
}

/** 68 points (iBUG order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-41 / 42-47, mouth 48-67) in pixels. */
export type Landmarks68 = Array<[number, number]>;

/** Centres of the two eyes (`left` = points 36-41, the eye on the image's left for a frontal face). */
export function eyeCentres(points: Landmarks68): { left: [number, number]; right: [number, number] } {
  const mean = (from: number): [number, number] => {
    let x = 0;
    let y = 0;
    for (let i = from; i < from + 6; i++) {
      x += points[i]![0];
      y += points[i]![1];
    }
    return [x / 6, y / 6];
  };
  return { left: mean(36), right: mean(42) };
}

/** face-api's 68-point tiny landmark net (`faceapi:landmarks-tiny`; load with `loadZooLandmarker` from `@dfd/zoo/node`). */
export class FaceLandmarker {
  readonly id = 'faceapi:landmarks-tiny';

  constructor(private readonly weights: tf.NamedTensorMap) {
    for (const n of ['dense0/conv0/filters', 'fc/weights']) w(weights, n);
  }

  /** 68 points of the face in `face` (a face crop: RGB bytes or a [1, h, w, 3] tensor in 0..255), in its pixels. */
  async landmarksOf(face: ZooImage | tf.Tensor4D): Promise<Landmarks68> {
    const x = face instanceof tf.Tensor ? face : imageTensor(face);
    const [, h, wd] = x.shape;
    const raw = tf.tidy(() => landmarks68TinyForward(this.weights, landmarksInput(x)));
    if (x !== face) x.dispose();
    const out = await raw.data();
    raw.dispose();
    // face-api: points * 112 minus the centred padding, over the face's size in the 112 square.
    const scale = SIZE / Math.max(h, wd);
    const sw = wd * scale;
    const sh = h * scale;
    const padX = sw < sh ? Math.abs(sw - sh) / 2 : 0;
    const padY = sh < sw ? Math.abs(sw - sh) / 2 : 0;
    const pts: Landmarks68 = [];
    for (let i = 0; i < 68; i++) pts.push([((out[2 * i]! * SIZE - padX) / sw) * wd, ((out[2 * i + 1]! * SIZE - padY) / sh) * h]);
    return pts;
  }

  /**
   * 68 points of the face in `box` of `image`, in the image's pixels: the box is clipped to the
   * image and cut at whole pixels (as face-api does) before the net sees it.
   */
  async landmarks(image: ZooImage, box: { x: number; y: number; width: number; height: number }): Promise<Landmarks68> {
    // face-api's Box.clipAtImageBorders(...).floor().
    const cx = Math.max(0, box.x);
    const cy = Math.max(0, box.y);
    const x0 = Math.min(image.width - 1, Math.floor(cx));
    const y0 = Math.min(image.height - 1, Math.floor(cy));
    const cw = Math.max(1, Math.min(Math.floor(Math.min(box.x + box.width - cx, image.width - cx)), image.width - x0));
    const ch = Math.max(1, Math.min(Math.floor(Math.min(box.y + box.height - cy, image.height - cy)), image.height - y0));
    const data = new Uint8Array(cw * ch * 3);
    for (let y = 0; y < ch; y++) data.set(image.data.subarray(((y0 + y) * image.width + x0) * 3, ((y0 + y) * image.width + x0 + cw) * 3), y * cw * 3);
    const pts = await this.landmarksOf({ width: cw, height: ch, data });
    return pts.map(([px, py]) => [px + x0, py + y0]);
  }

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(Object.values(this.weights));
  }
}
