import * as tf from '@tensorflow/tfjs-core';
import type { EvaluationResult } from '@dfd/core';
import type { Batch, BatchSource } from './data.js';
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

/** One classifier head to evaluate: its logits in the model's output, its labels in a batch. */
export interface EvaluationHead<O> {
  /** Name of the result (a target, a factor). */
  target: string;
  numClasses: number;
  logits(output: O): tf.Tensor2D;
  /** The head's labels in `batch`; a batch without them does not count for this head. */
  labels(batch: Batch): tf.Tensor1D | undefined;
}

/**
 * Evaluate several heads of `model` (inference mode) on every batch of `source` (epoch 0, in
 * order): one forward pass per batch, one {@link EvaluationResult} per head (stage 1 evaluates
 * every factor head of an EIFE in one pass).
 */
export async function evaluateHeads<O>(model: { forward(x: tf.Tensor4D, options: { training: boolean }): O }, source: BatchSource, heads: ReadonlyArray<EvaluationHead<O>>): Promise<EvaluationResult[]> {
  const labels = heads.map(() => [] as number[]);
  const predictions = heads.map(() => [] as number[]);
  for await (const batch of source.batches(0)) {
    try {
      const present = heads.map((h) => h.labels(batch));
      if (present.every((l) => !l)) continue;
      const used = heads.flatMap((h, i) => (present[i] ? [i] : []));
      const preds = tf.tidy(() => {
        const out = model.forward(batch.images, { training: false });
        return used.map((i) => tf.argMax(heads[i]!.logits(out), 1));
      });
      for (const [k, pred] of preds.entries()) {
        const i = used[k]!;
        predictions[i]!.push(...(await pred.data()));
        pred.dispose();
        labels[i]!.push(...(await present[i]!.data()));
      }
    } finally {
      disposeBatch(batch);
    }
  }
  return heads.map((h, i) => summarise(h.target, labels[i]!, predictions[i]!, h.numClasses));
}

/** Evaluate a classifier's expression logits (inference mode) on every batch of `source` (epoch 0, in order). */
export async function evaluate(model: Classifier, source: BatchSource, target: string, numClasses = 7): Promise<EvaluationResult> {
  const [result] = await evaluateHeads(model, source, [{ target, numClasses, logits: (o) => o.logits, labels: (b) => b.expression }]);
  return result!;
}

/** Mean accuracy over targets (the paper's "mean" column). */
export function meanAccuracy(results: EvaluationResult[]): number {
  const valid = results.filter((r) => Number.isFinite(r.accuracy));
  return valid.length ? valid.reduce((a, r) => a + r.accuracy, 0) / valid.length : Number.NaN;
}
