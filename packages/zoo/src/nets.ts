import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';

/**
 * face-api.js's recognition net and age/gender net, rebuilt on tfjs-core ops over their weight
 * maps (face-api's own names). The ops and their order follow face-api's source
 * (src/faceRecognitionNet, src/xception, src/ageGenderNet), so outputs agree with its inference
 * to float32 rounding (tested against the library itself). Inference only: the zoo uses these
 * nets frozen, as EIFEs.
 */

/** A weight the net needs is missing from the map (wrong or truncated manifest). */
export class ZooWeightsError extends DfdError {
  constructor(message: string) {
    super('E_ZOO_WEIGHTS', message);
  }
}

function w(map: tf.NamedTensorMap, name: string): tf.Tensor {
  const t = map[name];
  if (!t) throw new ZooWeightsError(`weight '${name}' missing from the zoo weights; the installed package is not the version dfd expects (dfd models list).`);
  return t;
}

// --- recognition (faceRecognitionNet/{convLayer,residualLayer,FaceRecognitionNet}.ts) ---

function convLayer(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D, stride: 1 | 2, relu: boolean, pad: 'same' | 'valid'): tf.Tensor4D {
  let out = tf.add(tf.conv2d(x, w(map, `${p}/conv/filters`) as tf.Tensor4D, stride, pad), w(map, `${p}/conv/bias`)) as tf.Tensor4D;
  out = tf.add<tf.Tensor4D>(tf.mul(out, w(map, `${p}/scale/weights`)), w(map, `${p}/scale/biases`));
  return relu ? tf.relu(out) : out;
}

function residual(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D): tf.Tensor4D {
  let out = convLayer(map, `${p}/conv1`, x, 1, true, 'same');
  out = convLayer(map, `${p}/conv2`, out, 1, false, 'same');
  return tf.relu(tf.add<tf.Tensor4D>(out, x));
}

function residualDown(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D): tf.Tensor4D {
  let out = convLayer(map, `${p}/conv1`, x, 2, true, 'valid');
  out = convLayer(map, `${p}/conv2`, out, 1, false, 'same');
  let pooled = tf.avgPool(x, 2, 2, 'valid');
  const zeros = tf.zeros<tf.Rank.R4>(pooled.shape);
  if (pooled.shape[1] !== out.shape[1] || pooled.shape[2] !== out.shape[2]) {
    out = tf.concat([out, tf.zeros<tf.Rank.R4>([out.shape[0], 1, out.shape[2], out.shape[3]])], 1);
    out = tf.concat([out, tf.zeros<tf.Rank.R4>([out.shape[0], out.shape[1], 1, out.shape[3]])], 2);
  }
  if (pooled.shape[3] !== out.shape[3]) pooled = tf.concat([pooled, zeros], 3);
  return tf.relu(tf.add<tf.Tensor4D>(pooled, out));
}

/** face-api's FaceRecognitionNet: [N, 150, 150, 3] in face-api scaling -> the 128-d descriptor. */
export function recognitionForward(map: tf.NamedTensorMap, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    let out = convLayer(map, 'conv32_down', x, 2, true, 'valid');
    out = tf.maxPool(out, 3, 2, 'valid');
    for (const p of ['conv32_1', 'conv32_2', 'conv32_3']) out = residual(map, p, out);
    out = residualDown(map, 'conv64_down', out);
    for (const p of ['conv64_1', 'conv64_2', 'conv64_3']) out = residual(map, p, out);
    out = residualDown(map, 'conv128_down', out);
    for (const p of ['conv128_1', 'conv128_2']) out = residual(map, p, out);
    out = residualDown(map, 'conv256_down', out);
    for (const p of ['conv256_1', 'conv256_2']) out = residual(map, p, out);
    out = residualDown(map, 'conv256_down_out', out);
    return tf.matMul(tf.mean(out, [1, 2]) as tf.Tensor2D, w(map, 'fc') as tf.Tensor2D);
  });
}

// --- age/gender (xception/TinyXception.ts, ageGenderNet/AgeGenderNet.ts) ---

function sepConv(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D): tf.Tensor4D {
  const out = tf.separableConv2d(x, w(map, `${p}/depthwise_filter`) as tf.Tensor4D, w(map, `${p}/pointwise_filter`) as tf.Tensor4D, 1, 'same');
  return tf.add(out, w(map, `${p}/bias`));
}

function conv(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  return tf.add(tf.conv2d(x, w(map, `${p}/filters`) as tf.Tensor4D, stride, 'same'), w(map, `${p}/bias`));
}

function reductionBlock(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D, activateInput: boolean): tf.Tensor4D {
  let out = activateInput ? tf.relu(x) : x;
  out = sepConv(map, `${p}/separable_conv0`, out);
  out = sepConv(map, `${p}/separable_conv1`, tf.relu(out));
  out = tf.maxPool(out, [3, 3], [2, 2], 'same');
  return tf.add(out, conv(map, `${p}/expansion_conv`, x, 2));
}

function mainBlock(map: tf.NamedTensorMap, p: string, x: tf.Tensor4D): tf.Tensor4D {
  let out = sepConv(map, `${p}/separable_conv0`, tf.relu(x));
  out = sepConv(map, `${p}/separable_conv1`, tf.relu(out));
  out = sepConv(map, `${p}/separable_conv2`, tf.relu(out));
  return tf.add(out, x);
}

/** What {@link ageGenderForward} returns. */
export interface AgeGenderOutputs {
  /** The pooled 512-d bottleneck both heads read (the zoo's age/gender embedding). */
  features: tf.Tensor2D;
  /** Age in years [N]. */
  age: tf.Tensor1D;
  /** Gender probabilities [N, 2] (male, female). */
  gender: tf.Tensor2D;
}

/** face-api's AgeGenderNet (TinyXception with 2 main blocks): [N, 112, 112, 3] in face-api scaling. */
export function ageGenderForward(map: tf.NamedTensorMap, x: tf.Tensor4D): AgeGenderOutputs {
  return tf.tidy(() => {
    let out = tf.relu(conv(map, 'entry_flow/conv_in', x, 2));
    out = reductionBlock(map, 'entry_flow/reduction_block_0', out, false);
    out = reductionBlock(map, 'entry_flow/reduction_block_1', out, true);
    for (let i = 0; i < 2; i++) out = mainBlock(map, `middle_flow/main_block_${i}`, out);
    out = reductionBlock(map, 'exit_flow/reduction_block', out, true);
    out = tf.relu(sepConv(map, 'exit_flow/separable_conv', out));
    const features = tf.reshape(tf.avgPool(out, [7, 7], [2, 2], 'valid'), [out.shape[0], -1]) as tf.Tensor2D;
    const age = tf.reshape(tf.add(tf.matMul(features, w(map, 'fc/age/weights') as tf.Tensor2D), w(map, 'fc/age/bias')), [-1]) as tf.Tensor1D;
    const gender = tf.softmax(tf.add(tf.matMul(features, w(map, 'fc/gender/weights') as tf.Tensor2D), w(map, 'fc/gender/bias')) as tf.Tensor2D);
    return { features, age, gender };
  });
}

/**
 * face-api weight name -> dfd parameter name of the backbone that rebuilds the net (under `efe.`
 * in DFD-Net): `dense0/conv1/depthwise_filter` -> `dense0.conv1.depthwise`, `dense0/conv0/filters`
 * -> `dense0.conv0.weight`, `entry_flow/conv_in/bias` -> `entry_flow.conv_in.bias`; `fc/*` and
 * `fc` (heads) -> null.
 */
export function faceapiDenseName(name: string): string | null {
  if (name === 'fc' || name.startsWith('fc/')) return null;
  return name
    .replace(/\//g, '.')
    .replace(/\.filters$/, '.weight')
    .replace(/\.depthwise_filter$/, '.depthwise')
    .replace(/\.pointwise_filter$/, '.pointwise');
}

/** face-api's expression order: neutral, happy, sad, angry, fearful, disgusted, surprised. */
export const FACEAPI_EXPRESSIONS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'] as const;

/**
 * For each canonical class (0 surprise, 1 fear, 2 disgust, 3 happiness, 4 sadness, 5 anger,
 * 6 neutral; METHOD.md), its column in face-api's expression output.
 */
export const FACEAPI_TO_CANONICAL: readonly number[] = [6, 4, 5, 1, 2, 3, 0];
