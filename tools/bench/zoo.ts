import * as tf from '@tensorflow/tfjs-core';
import { createDfdNet, type DfdVariant } from '@dfd/model';
import { TrunkCache } from '@dfd/trainer';

/*
 * `--freeze-backbone` in numbers: one DFD-Net att+eifp training step (forward, CE + MI loss,
 * tf.variableGrads, Adam) on the face-api backbone (layout 'faceapi', 112 px, MI heads of the
 * zoo EIFEs: 128 and 512), with the backbone frozen and not, and frozen with the trunk cache
 * (each image's trunk features computed once, then looked up). Random weights: the speed does not
 * depend on them, and the bench needs no zoo package installed.
 */

/** Median images/s of the two steps, and what the frozen step still computes. */
export interface FrozenBenchResult {
  variant: DfdVariant;
  batch: number;
  size: number;
  steps: number;
  frozen: { imgPerSec: number; trainedParams: number };
  unfrozen: { imgPerSec: number; trainedParams: number };
  /**
   * Frozen with the trunk cache (DfdTask `trunkCache`), in the epochs after the first: every view
   * is cached, a step looks its features up (image hash + copy) and trains the heads on them.
   */
  cached: { imgPerSec: number; trainedParams: number; bytesPerImage: number };
  /** The first epoch with the cache: the trunk runs once per image, outside the tape. */
  cachedFirstEpoch: { imgPerSec: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Runs `steps` timed steps (after one warm-up) frozen, then unfrozen, on the current backend. */
export function benchFrozenBackbone(batch: number, steps: number, variant: DfdVariant = 'att+eifp'): FrozenBenchResult {
  const size = 112;
  const model = createDfdNet({ variant, layout: 'faceapi', miDims: [128, 512], seed: 0 });
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 7), 'int32'), 7);
  const d1 = tf.randomNormal([batch, 128], 0, 1, 'float32', 2);
  const d2 = tf.randomNormal([batch, 512], 0, 1, 'float32', 3);
  const ids = Array.from({ length: batch }, (_, i) => `s${i}`);
  const run = (frozen: boolean, cache?: () => TrunkCache): { imgPerSec: number; trainedParams: number } => {
    model.setBackboneFrozen(frozen);
    let trunkCache = cache?.();
    const vars = model.trainableParameters().map(([, v]) => v);
    const opt: tf.Optimizer = tf.train.adam(1e-4);
    const step = () =>
      tf.tidy(() => {
        const trunk = trunkCache?.features(x, ids, (b) => model.trunkFeatures(b, { training: false }));
        const { value, grads } = tf.variableGrads(() => {
          const out = trunk ? model.forwardFromTrunk(trunk, { training: true }) : model.forward(x, { training: true });
          let loss = tf.losses.softmaxCrossEntropy(labels, out.logits) as tf.Scalar;
          if (out.miPredictions) {
            const [p1, p2] = out.miPredictions;
            loss = tf.add(loss, tf.add(tf.losses.huberLoss(d1, p1!), tf.losses.huberLoss(d2, p2!)));
          }
          return loss as tf.Scalar;
        }, vars);
        opt.applyGradients(grads);
        value.dataSync();
      });
    step();
    const ms: number[] = [];
    for (let i = 0; i < steps; i++) {
      // cachedFirstEpoch: a fresh cache each step, so every image misses once.
      if (cache && cacheFresh) trunkCache = cache();
      const t0 = performance.now();
      step();
      ms.push(performance.now() - t0);
    }
    opt.dispose();
    return { imgPerSec: (batch * 1000) / median(ms), trainedParams: vars.reduce((s, v) => s + v.size, 0) };
  };
  let cacheFresh = false;
  try {
    const frozen = run(true);
    let cacheUsed: TrunkCache | undefined;
    const cachedRun = run(true, () => (cacheUsed = new TrunkCache()));
    const cached = { ...cachedRun, bytesPerImage: cacheUsed!.bytes / batch };
    cacheFresh = true;
    const cachedFirstEpoch = { imgPerSec: run(true, () => new TrunkCache()).imgPerSec };
    const unfrozen = run(false);
    return { variant, batch, size, steps, frozen, unfrozen, cached, cachedFirstEpoch };
  } finally {
    tf.dispose([x, labels, d1, d2]);
    model.dispose();
  }
}
