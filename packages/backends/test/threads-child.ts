// Child process of wasm-threads.test.ts: one conv-BN-PReLU-pool-dense training step on the wasm
// backend with the thread count from DFD_WASM_THREADS (and wasmPaths from DFD_TEST_WASM_PATHS);
// prints the thread count and the numbers.
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { setWasmWinograd, useBackend, winogradStats, winogradTransformThreads } from '../src/index.js';

// DFD_TEST_WASM_PATHS: a JSON string or object passed as useBackend's wasmPaths option.
const paths = process.env.DFD_TEST_WASM_PATHS;
const used = await useBackend('wasm', paths ? { wasmPaths: JSON.parse(paths) as string | Record<string, string> } : {});
const seeded = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 0.5, 'float32', seed);
const x = seeded([6, 19, 19, 5], 1) as tf.Tensor4D;
const w1 = tf.variable(seeded([3, 3, 5, 24], 2));
const w2 = tf.variable(seeded([3, 3, 24, 32], 3));
const fc = tf.variable(seeded([32, 7], 4));
const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32'), 7);
const { value, grads } = tf.variableGrads(() => {
  let h = tf.conv2d(x, w1 as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  h = tf.prelu(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5))) as tf.Tensor4D, tf.fill([24], 0.25) as unknown as tf.Tensor4D);
  h = tf.maxPool(tf.conv2d(h, w2 as tf.Tensor4D, 1, 'same'), 3, 2, 'same');
  return tf.losses.softmaxCrossEntropy(labels, tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, fc)) as tf.Scalar;
});
// Inference with the trained-from filter w2 (24 -> 32 channels): the first call is direct, the
// next ones Winograd through dfd's transform module (shared-memory variant on the threaded
// build, its transforms split by image over the transform workers; plain on the
// single-threaded one): F(4x4,3x3) on a 10x9 map, F(6x6,3x3) on a 6x6 one.
const hx = seeded([3, 10, 9, 24], 5) as tf.Tensor4D;
const direct = tf.conv2d(hx, w2 as tf.Tensor4D, 1, 'same');
const before = winogradStats().convolutions;
const wino = tf.conv2d(hx, w2 as tf.Tensor4D, 1, 'same');
const ran = winogradStats().convolutions - before;
const hx6 = seeded([3, 6, 6, 24], 6) as tf.Tensor4D;
const wino6 = tf.conv2d(hx6, w2 as tf.Tensor4D, 1, 'same');
const cached = winogradStats().cachedFilters;
// A filter whose transform (36 x 208 x 204 floats) is over the fused path's limit: three passes,
// the GEMM's 2 row chunks x 36 slices split between the threads.
const wb = seeded([3, 3, 208, 204], 7) as tf.Tensor4D;
const hb = seeded([3, 9, 9, 208], 8) as tf.Tensor4D;
const directB = tf.conv2d(hb, wb, 1, 'same');
const winoB = tf.conv2d(hb, wb, 1, 'same');
setWasmWinograd(false);
const direct6 = tf.conv2d(hx6, w2 as tf.Tensor4D, 1, 'same');
const out = {
  reason: used.reason,
  threads: getThreadsCount(),
  loss: value.dataSync()[0],
  grads: [w1, w2, fc].map((v) => Array.from(grads[v.name]!.dataSync())),
  transformThreads: winogradTransformThreads(),
  winograd: { ran, maxDiff: tf.max(tf.abs(tf.sub(wino, direct))).dataSync()[0], scale: tf.max(tf.abs(direct)).dataSync()[0], values: Array.from(wino.dataSync()) },
  winogradBig: { maxDiff: tf.max(tf.abs(tf.sub(winoB, directB))).dataSync()[0], scale: tf.max(tf.abs(directB)).dataSync()[0], values: Array.from(winoB.dataSync()) },
  winograd6: { cached, maxDiff: tf.max(tf.abs(tf.sub(wino6, direct6))).dataSync()[0], scale: tf.max(tf.abs(direct6)).dataSync()[0], values: Array.from(wino6.dataSync()) },
};
process.stdout.write(JSON.stringify(out));
