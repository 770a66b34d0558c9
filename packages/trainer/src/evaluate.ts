import * as tf from '@tensorflow/tfjs-core';
import type { EvaluationResult } from '@dfd/core';
import type { BatchSource } from './data.js';
import { disposeBatch } from './data.js';

/** Anything with a classifier output. */
export interface Classifier {
  forward(x: tf.Tensor4D, options: { training: boolean }): { logits: tf.Tensor2D };
}

/** Accuracy, per-class accuracy and confusion matrix from predictions (pure; labels < 0 skipped). */
export function summarise(target: string, labels: ArrayLike<number>, predictions: ArrayLike<number>, numClasses: number): EvaluationResult {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let correct = 0;
  let count = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y < 0 || y >= numClasses) continue;
    const p = predictions[i]!;
    confusion[y]![p]!++;
    count++;
    if (p === y) correct++;
  }
  const perClassAccuracy = confusion.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n > 0 ? row[c]! / n : Number.NaN;
  });
  return { target, accuracy: count > 0 ? correct / count : Number.NaN, count, perClassAccuracy, confusion };
}

/** Evaluate `model` (inference mode) on every batch of `source` (epoch 0, in order). */
export async function evaluate(model: Classifier, source: BatchSource, target: string, numClasses = 7): Promise<EvaluationResult> {
  const labels: number[] = [];
  const predictions: number[] = [];
  for await (const batch of source.batches(0)) {
    try {
      if (!batch.expression) continue;
      const pred = tf.tidy(() => tf.argMax(model.forward(batch.images, { training: false }).logits, 1));
      predictions.push(...(await pred.data()));
      pred.dispose();
      labels.push(...(await batch.expression.data()));
    } finally {
      disposeBatch(batch);
    }
  }
  return summarise(target, labels, predictions, numClasses);
}

/** Mean accuracy over targets (the paper's "mean" column). */
export function meanAccuracy(results: EvaluationResult[]): number {
  const valid = results.filter((r) => Number.isFinite(r.accuracy));
  return valid.length ? valid.reduce((a, r) => a + r.accuracy, 0) / valid.length : Number.NaN;
}
