// Tiny stand-ins with the @dfd/model surface, for fast loop tests (not exported by the package).
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import type { DfdNetLike, EifeLike } from '../task.js';

function param(rng: Rng, shape: number[], std: number): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal(0, std);
  return tf.tidy(() => tf.variable(tf.tensor(data, shape), true));
}

function grl(x: tf.Tensor, lambda: number): tf.Tensor {
  const f = tf.customGrad(((input: tf.Tensor) => ({ value: tf.clone(input), gradFunc: (dy: tf.Tensor) => tf.mul(dy, -lambda) })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x);
}

/** conv3x3 s2 -> relu -> GAP (with a tracked running mean buffer) -> fc (attOut) -> classifier; att+eifp adds GRL -> MI heads. */
export class TinyDfdNet implements DfdNetLike {
  lambda = 1;
  private readonly params: Array<[string, tf.Variable]>;
  private readonly buffers: Array<[string, tf.Variable]>;

  constructor(readonly options: { channels?: number; miDims?: number[]; seed?: number; numClasses?: number } = {}) {
    const rng = new Rng(options.seed ?? 1);
    const c = options.channels ?? 4;
    const k = options.numClasses ?? 7;
    this.params = [
      ['efe.conv.weight', param(rng, [3, 3, 3, c], 0.3)],
      ['attention.fc.weight', param(rng, [c, 8], 0.3)],
      ['classifier.weight', param(rng, [8, k], 0.3)],
      ['classifier.bias', tf.variable(tf.zeros([k]), true)],
    ];
    (options.miDims ?? []).forEach((d, i) => {
      this.params.push([`eifp.heads.${i}.fc1.weight`, param(rng, [8, d], 0.3)]);
    });
    this.buffers = [['efe.bn.running_mean', tf.variable(tf.zeros([c]), false)]];
  }

  private p(name: string): tf.Variable {
    return this.params.find(([n]) => n === name)![1];
  }

  setLambda(lambda: number): void {
    this.lambda = lambda;
  }

  forward(x: tf.Tensor4D, { training }: { training: boolean }): { logits: tf.Tensor2D; attOut: tf.Tensor2D; miPredictions?: tf.Tensor2D[] } {
    const feat = tf.relu(tf.conv2d(x, this.p('efe.conv.weight') as tf.Tensor4D, 2, 'same'));
    const pooled = tf.mean(feat, [1, 2]) as tf.Tensor2D;
    if (training) {
      const rm = this.buffers[0]![1];
      tf.tidy(() => rm.assign(tf.add(tf.mul(rm, 0.9), tf.mul(tf.mean(pooled, 0), 0.1))));
    }
    const attOut = tf.matMul(pooled, this.p('attention.fc.weight')) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(attOut, this.p('classifier.weight')), this.p('classifier.bias')) as tf.Tensor2D;
    const miDims = this.options.miDims ?? [];
    if (miDims.length === 0) return { logits, attOut };
    const reversed = grl(attOut, this.lambda);
    const miPredictions = miDims.map((_, i) => tf.matMul(reversed as tf.Tensor2D, this.p(`eifp.heads.${i}.fc1.weight`)) as tf.Tensor2D);
    return { logits, attOut, miPredictions };
  }

  namedParameters() {
    return this.params;
  }

  namedBuffers() {
    return this.buffers;
  }

  dispose(): void {
    for (const [, v] of [...this.params, ...this.buffers]) v.dispose();
  }
}

/** conv -> GAP -> embed -> one linear head per factor. */
export class TinyEife implements EifeLike {
  private readonly params: Array<[string, tf.Variable]>;

  constructor(readonly factors: Array<{ name: string; classes: number }>, embedDim = 4, seed = 2) {
    const rng = new Rng(seed);
    this.params = [
      ['efe.conv.weight', param(rng, [3, 3, 3, 4], 0.3)],
      ['embed.weight', param(rng, [4, embedDim], 0.3)],
      ...factors.map((f) => [`heads.${f.name}.weight`, param(rng, [embedDim, f.classes], 0.3)] as [string, tf.Variable]),
    ];
  }

  private p(name: string): tf.Variable {
    return this.params.find(([n]) => n === name)![1];
  }

  forward(x: tf.Tensor4D): { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> } {
    const pooled = tf.mean(tf.relu(tf.conv2d(x, this.p('efe.conv.weight') as tf.Tensor4D, 2, 'same')), [1, 2]) as tf.Tensor2D;
    const embedding = tf.matMul(pooled, this.p('embed.weight')) as tf.Tensor2D;
    const logits: Record<string, tf.Tensor2D> = {};
    for (const f of this.factors) logits[f.name] = tf.matMul(embedding, this.p(`heads.${f.name}.weight`)) as tf.Tensor2D;
    return { embedding, logits };
  }

  namedParameters() {
    return this.params;
  }

  namedBuffers() {
    return [];
  }

  dispose(): void {
    for (const [, v] of this.params) v.dispose();
  }
}

/** Random images in [-1, 1] with labels that depend on the mean of the red channel (learnable). */
export function toySamples(n: number, size: number, seed: number, numClasses = 7) {
  const rng = new Rng(seed);
  const per = size * size * 3;
  const images = new Float32Array(n * per);
  const expression = new Int32Array(n);
  const factors = { a: new Int32Array(n), b: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const label = rng.int(numClasses);
    expression[i] = label;
    factors.a[i] = label % 2;
    factors.b[i] = label % 3;
    for (let j = 0; j < per; j++) images[i * per + j] = rng.uniform(-1, 1) + (j % 3 === 0 ? (label - 3) * 0.3 : 0);
  }
  return { images, shape: [size, size, 3] as [number, number, number], expression, factors };
}
