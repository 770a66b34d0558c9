import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { sumMicroBatchGradients } from '@dfd/trainer';

/*
 * The benchmark's training step: forward, softmax cross-entropy, tf.variableGrads, Adam.
 * The network is DFD-Net from @dfd/model when it exports `createDfdNet`; otherwise a
 * PreAct-ResNet-18-shaped conv net built here from plain tf ops (conv + BN-by-ops + PReLU +
 * max pool + global avg/max pool + matMul), which exercises the same kernels.
 */

/** A network the benchmark can train: its variables and a forward pass to logits. */
export interface BenchNet {
  readonly name: string;
  readonly variables: tf.Variable[];
  /** Returns logits [batch, classes]. */
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  /** Extra loss terms the network wants minimised with the CE (e.g. DFD-Net's auxiliary losses). */
  loss?(x: tf.Tensor4D, labels: tf.Tensor1D): tf.Scalar;
  dispose(): void;
}

function heNormal(rng: Rng, shape: number[], fanIn: number): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < n; i++) data[i] = rng.normal(0, std);
  return tf.variable(tf.tensor(data, shape));
}

/** PreAct-ResNet-18 (widths 64..512 times `widthMult`) from plain tf ops, 7 classes. */
export function createOpsResNet18(seed = 0, widthMult = 1, classes = 7): BenchNet {
  const rng = new Rng(seed);
  const vars: tf.Variable[] = [];
  const conv = (k: number, ci: number, co: number): tf.Variable => {
    const v = heNormal(rng, [k, k, ci, co], k * k * ci);
    vars.push(v);
    return v;
  };
  const bn = (c: number): { g: tf.Variable; b: tf.Variable } => {
    const g = tf.variable(tf.ones([c]));
    const b = tf.variable(tf.zeros([c]));
    vars.push(g, b);
    return { g, b };
  };
  const prelu = (c: number): tf.Variable => {
    const a = tf.variable(tf.fill([c], 0.25));
    vars.push(a);
    return a;
  };
  const w = (c: number): number => Math.max(1, Math.round(c * widthMult));
  const c1 = w(64);
  const stem = { w: conv(7, 3, c1), bn: bn(c1), a: prelu(c1) };
  interface Block { bn1: { g: tf.Variable; b: tf.Variable }; a1: tf.Variable; w1: tf.Variable; bn2: { g: tf.Variable; b: tf.Variable }; a2: tf.Variable; w2: tf.Variable; sc?: tf.Variable; stride: number }
  const blocks: Block[] = [];
  let cin = c1;
  for (const [i, base] of [64, 128, 256, 512].entries()) {
    const cout = w(base);
    for (let j = 0; j < 2; j++) {
      const stride = i > 0 && j === 0 ? 2 : 1;
      const block: Block = { bn1: bn(cin), a1: prelu(cin), w1: conv(3, cin, cout), bn2: bn(cout), a2: prelu(cout), w2: conv(3, cout, cout), stride };
      if (stride !== 1 || cin !== cout) block.sc = conv(1, cin, cout);
      blocks.push(block);
      cin = cout;
    }
  }
  const fin = { bn: bn(cin), a: prelu(cin) };
  const fcW = heNormal(rng, [2 * cin, classes], 2 * cin);
  const fcB = tf.variable(tf.zeros([classes]));
  vars.push(fcW, fcB);

  const batchNorm = (x: tf.Tensor4D, p: { g: tf.Variable; b: tf.Variable }): tf.Tensor4D => {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), p.g), p.b);
  };
  return {
    name: `PreAct-ResNet-18 (tf ops, width x${widthMult})`,
    variables: vars,
    forward(x: tf.Tensor4D): tf.Tensor2D {
      let h = tf.conv2d(x, stem.w as tf.Tensor4D, 2, 'same');
      h = tf.prelu(batchNorm(h, stem.bn), stem.a as unknown as tf.Tensor4D);
      h = tf.maxPool(h, 3, 2, 'same');
      for (const b of blocks) {
        const pre = tf.prelu(batchNorm(h, b.bn1), b.a1 as unknown as tf.Tensor4D);
        const sc = b.sc ? tf.conv2d(pre, b.sc as tf.Tensor4D, b.stride, 'same') : h;
        let r = tf.conv2d(pre, b.w1 as tf.Tensor4D, b.stride, 'same');
        r = tf.conv2d(tf.prelu(batchNorm(r, b.bn2), b.a2 as unknown as tf.Tensor4D), b.w2 as tf.Tensor4D, 1, 'same');
        h = tf.add(sc, r);
      }
      h = tf.prelu(batchNorm(h, fin.bn), fin.a as unknown as tf.Tensor4D);
      const pooled = tf.concat([tf.mean(h, [1, 2]), tf.max(h, [1, 2])], 1) as tf.Tensor2D;
      return tf.add(tf.matMul(pooled, fcW), fcB);
    },
    dispose(): void {
      tf.dispose(vars);
    },
  };
}

type DfdModelModule = {
  createDfdNet?: (o: { variant: string; width?: number; inputSize?: number; seed?: number }) => {
    forward(x: tf.Tensor4D, o: { training: boolean }): { logits: tf.Tensor2D; attOut?: tf.Tensor2D; miPredictions?: tf.Tensor2D[] };
    namedParameters(): Array<[string, tf.Variable]>;
    dispose(): void;
  };
};

/**
 * DFD-Net (att+eifp) from @dfd/model when it is available, else the tf-ops PreAct-ResNet-18.
 * `why` says which and, for the fallback, why. The DFD-Net loss here is CE(logits) plus a
 * Huber term on the MI predictions (so the GRL / MI heads run backward too).
 */
export async function createBenchNet(opts: { net: 'dfd' | 'resnet'; width: number; size: number; seed?: number }): Promise<{ net: BenchNet; why: string }> {
  const seed = opts.seed ?? 0;
  if (opts.net === 'dfd') {
    let why = '';
    try {
      const spec = '@dfd/model';
      const mod = (await import(/* @vite-ignore */ spec)) as DfdModelModule;
      if (typeof mod.createDfdNet === 'function') {
        const model = mod.createDfdNet({ variant: 'att+eifp', width: opts.width, inputSize: opts.size, seed });
        const variables = model.namedParameters().map(([, v]) => v);
        const net: BenchNet = {
          name: `DFD-Net att+eifp (@dfd/model, width x${opts.width})`,
          variables,
          forward: (x, training) => tf.tidy(() => model.forward(x, { training }).logits),
          loss: (x, labels) =>
            tf.tidy(() => {
              const out = model.forward(x, { training: true });
              const logits = out.logits;
              let loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, logits.shape[1]), logits) as tf.Scalar;
              for (const d of out.miPredictions ?? []) loss = tf.add(loss, tf.losses.huberLoss(tf.zerosLike(d), d));
              return loss;
            }),
          dispose: () => model.dispose(),
        };
        return { net, why: 'createDfdNet from @dfd/model' };
      }
      why = '@dfd/model has no createDfdNet yet';
    } catch (e) {
      why = `@dfd/model failed to load (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
    }
    return { net: createOpsResNet18(seed, opts.width), why: `fallback: ${why}` };
  }
  return { net: createOpsResNet18(seed, opts.width), why: 'requested --net resnet' };
}

/** Forward pass only (inference mode); reads the logits back so the work is complete. */
export function inferStep(net: BenchNet, x: tf.Tensor4D): void {
  const logits = net.forward(x, false);
  logits.dataSync();
  logits.dispose();
}

/**
 * One optimizer step on (x, labels); returns the loss value (already read back, so the step is
 * complete). With `micro` < batch, the batch is split into micro-batches
 * whose loss-share-weighted gradients are summed before the step (@dfd/trainer's
 * sumMicroBatchGradients, what `--micro-batch` uses; batch norm then normalises per micro-batch).
 */
export function trainStep(net: BenchNet, optimizer: tf.Optimizer, x: tf.Tensor4D, labels: tf.Tensor1D, classes = 7, micro = 0): number {
  const n = x.shape[0];
  const { value, grads } = sumMicroBatchGradients(n, micro > 0 ? micro : undefined, ({ start, size, share }) => {
    const whole = size === n;
    const xs = whole ? x : tf.slice(x, [start, 0, 0, 0], [size, -1, -1, -1]);
    const ls = whole ? labels : tf.slice(labels, start, size);
    try {
      return tf.variableGrads(() => {
        const l = net.loss ? net.loss(xs, ls) : (tf.losses.softmaxCrossEntropy(tf.oneHot(ls, classes), net.forward(xs, true)) as tf.Scalar);
        return whole ? l : (tf.mul(l, share) as tf.Scalar);
      }, net.variables);
    } finally {
      if (!whole) tf.dispose([xs, ls]);
    }
  });
  optimizer.applyGradients(grads);
  const loss = value.dataSync()[0] ?? NaN;
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

/** Random inputs in [-1, 1] and labels from a seeded Rng. */
export function randomBatch(seed: number, batch: number, size: number, classes = 7): { x: tf.Tensor4D; labels: tf.Tensor1D } {
  const rng = new Rng(seed);
  const data = new Float32Array(batch * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-1, 1);
  const labels = new Int32Array(batch);
  for (let i = 0; i < batch; i++) labels[i] = rng.int(classes);
  return { x: tf.tensor4d(data, [batch, size, size, 3]), labels: tf.tensor1d(labels, 'int32') };
}
