import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { input, layers, loadLayersModel, model as functionalModel, sequential, type LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GrlError } from './errors.js';
import { GradientReversal, gradientReversalLayer } from './layer.js';

// A two-layer net: pre (dense 3->4, tanh) -> [GRL] -> post (dense 4->2). The GRL must flip and
// scale the update of `pre` only; `post` sees the same gradient with or without it.
const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const W0 = {
  preKernel: fill(12, (i) => 0.6 * Math.sin(0.9 * i + 0.3)),
  preBias: fill(4, (i) => 0.1 * Math.cos(i)),
  postKernel: fill(8, (i) => 0.5 * Math.cos(1.1 * i + 0.5)),
  postBias: fill(2, (i) => 0.05 * (i + 1)),
};
const X = () => tf.tensor2d(fill(18, (i) => Math.sin(0.37 * i + 1)), [6, 3]);
const Y = () => tf.tensor2d(fill(12, (i) => Math.cos(0.53 * i)), [6, 2]);
const LR = 0.1;

type Net = { model: LayersModel; grl?: GradientReversal };

function build(kind: 'sequential' | 'functional', grl?: GradientReversal): Net {
  const pre = layers.dense({ units: 4, activation: 'tanh', name: 'pre' });
  const post = layers.dense({ units: 2, name: 'post' });
  let model: LayersModel;
  if (kind === 'sequential') {
    const m = sequential();
    m.add(layers.dense({ units: 4, activation: 'tanh', name: 'pre', inputShape: [3] }));
    if (grl) m.add(grl);
    m.add(post);
    model = m;
  } else {
    const x = input({ shape: [3] });
    let h = pre.apply(x) as ReturnType<typeof input>;
    if (grl) h = grl.apply(h) as ReturnType<typeof input>;
    model = functionalModel({ inputs: x, outputs: post.apply(h) as ReturnType<typeof input> });
  }
  model.compile({ optimizer: tf.train.sgd(LR), loss: 'meanSquaredError' });
  return { model, grl };
}

function resetWeights(model: LayersModel) {
  const w = [tf.tensor2d(W0.preKernel, [3, 4]), tf.tensor1d(W0.preBias), tf.tensor2d(W0.postKernel, [4, 2]), tf.tensor1d(W0.postBias)];
  model.getLayer('pre').setWeights(w.slice(0, 2));
  model.getLayer('post').setWeights(w.slice(2));
  tf.dispose(w);
}

function readWeights(model: LayersModel): Record<string, Float32Array> {
  const [pk, pb] = model.getLayer('pre').getWeights();
  const [qk, qb] = model.getLayer('post').getWeights();
  return {
    preKernel: pk!.dataSync() as Float32Array,
    preBias: pb!.dataSync() as Float32Array,
    postKernel: qk!.dataSync() as Float32Array,
    postBias: qb!.dataSync() as Float32Array,
  };
}

/** One full-batch SGD step with model.fit from W0; returns new weights minus W0. */
async function fitDeltas(model: LayersModel): Promise<Record<string, Float64Array>> {
  resetWeights(model);
  const x = X();
  const y = Y();
  await model.fit(x, y, { batchSize: 6, epochs: 1, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
  return deltas(readWeights(model));
}

function deltas(w: Record<string, Float32Array>): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  for (const k of Object.keys(W0) as Array<keyof typeof W0>) out[k] = Float64Array.from(w[k]!, (v, i) => v - W0[k][i]!);
  return out;
}

function expectScaled(actual: ArrayLike<number>, reference: ArrayLike<number>, scale: number) {
  expect(actual.length).toBe(reference.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - scale * reference[i]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(scale)));
}

function expectReversed(grl: Record<string, Float64Array>, plain: Record<string, Float64Array>, lambda: number) {
  // The plain step must actually move `pre`, or the comparison proves nothing.
  expect(Math.max(...Array.from(plain.preKernel!, Math.abs))).toBeGreaterThan(1e-3);
  expectScaled(grl.preKernel!, plain.preKernel!, -lambda);
  expectScaled(grl.preBias!, plain.preBias!, -lambda);
  expectScaled(grl.postKernel!, plain.postKernel!, 1);
  expectScaled(grl.postBias!, plain.postBias!, 1);
  if (lambda > 0) {
    for (let i = 0; i < plain.preKernel!.length; i++) {
      if (Math.abs(plain.preKernel![i]!) > 1e-5) expect(Math.sign(grl.preKernel![i]!)).toBe(-Math.sign(plain.preKernel![i]!));
    }
  }
}

describe('GradientReversal layer', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const kind of ['sequential', 'functional'] as const) {
    it(`${kind} model.fit: one SGD step moves the weights before the GRL by -lambda times the plain step`, async () => {
      const plain = build(kind);
      const plainDelta = await fitDeltas(plain.model);
      for (const lambda of [1, 0.5, 2]) {
        const net = build(kind, new GradientReversal({ lambda }));
        expectReversed(await fitDeltas(net.model), plainDelta, lambda);
        net.model.dispose();
      }
      plain.model.dispose();
    });
  }

  it('custom loop (variableGrads + applyGradients): gradients and steps reversed before the GRL only', () => {
    const lambda = 0.8;
    const plain = build('functional');
    const net = build('functional', gradientReversalLayer({ lambda }));
    const x = X();
    const y = Y();
    const step = (m: LayersModel) => {
      resetWeights(m);
      const opt = tf.train.sgd(LR);
      const { value, grads } = tf.variableGrads(() => tf.losses.meanSquaredError(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
      const byName = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k.replace(/_\d+$/, ''), Array.from(g.dataSync())]));
      opt.applyGradients(grads);
      const loss = value.dataSync()[0]!;
      tf.dispose([value, ...Object.values(grads)]);
      opt.dispose();
      return { loss, byName, delta: deltas(readWeights(m)) };
    };
    const a = step(plain.model);
    const b = step(net.model);
    // Identity forward: same loss.
    expect(b.loss).toBe(a.loss);
    expect(Object.keys(b.byName).sort()).toEqual(Object.keys(a.byName).sort());
    for (const k of Object.keys(a.byName)) expectScaled(b.byName[k]!, a.byName[k]!, k.startsWith('pre') ? -lambda : 1);
    expectReversed(b.delta, a.delta, lambda);

    // No tensor leaks across repeated custom steps.
    step(net.model);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step(net.model);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
    plain.model.dispose();
    net.model.dispose();
  });

  it('lambda 0 freezes the weights before the GRL; setLambda/setProgress apply without recompiling', async () => {
    const plain = build('sequential');
    const plainDelta = await fitDeltas(plain.model);
    const grl = new GradientReversal({ schedule: { kind: 'dann' } });
    const net = build('sequential', grl);
    expect(grl.lambda).toBe(0);
    const d0 = await fitDeltas(net.model);
    expect(Array.from(d0.preKernel!).every((v) => v === 0)).toBe(true);
    expect(Array.from(d0.preBias!).every((v) => v === 0)).toBe(true);
    expectScaled(d0.postKernel!, plainDelta.postKernel!, 1);

    expect(grl.setProgress(0.5)).toBeCloseTo(Math.tanh(2.5), 14);
    expectReversed(await fitDeltas(net.model), plainDelta, Math.tanh(2.5));

    grl.setLambda(1.5);
    expect(grl.schedule).toEqual({ kind: 'constant', value: 1.5 });
    expectReversed(await fitDeltas(net.model), plainDelta, 1.5);

    // No tensor leaks across fit steps.
    await fitDeltas(net.model);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await fitDeltas(net.model);
    expect(tf.memory().numTensors).toBe(before);
    plain.model.dispose();
    net.model.dispose();
  });

  it('save/load round-trip keeps className, lambda, schedule and progress', async () => {
    const grl = new GradientReversal({ schedule: { kind: 'step', boundaries: [0.5], values: [0.25, 0.75] }, name: 'grl' });
    grl.setProgress(0.6);
    const net = build('sequential', grl);
    resetWeights(net.model);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await net.model.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const topology = JSON.stringify(artifacts!.modelTopology);
    expect(topology).toContain('"class_name":"GradientReversal"');
    const loaded = await loadLayersModel(tf.io.fromMemory(artifacts!));
    const restored = loaded.getLayer('grl');
    expect(restored).toBeInstanceOf(GradientReversal);
    const r = restored as GradientReversal;
    expect(r.lambda).toBe(0.75);
    expect(r.progress).toBe(0.6);
    expect(r.schedule).toEqual({ kind: 'step', boundaries: [0.5], values: [0.25, 0.75] });
    // The restored schedule is live: progress moves lambda.
    expect(r.setProgress(0.1)).toBe(0.25);
    r.setProgress(0.6);

    loaded.compile({ optimizer: tf.train.sgd(LR), loss: 'meanSquaredError' });
    const plain = build('sequential');
    expectReversed(await fitDeltas(loaded), await fitDeltas(plain.model), 0.75);
    loaded.dispose();
    plain.model.dispose();
    net.model.dispose();
  });

  it('getConfig/fromConfig and constructor checks', () => {
    const grl = new GradientReversal({ lambda: 0.3, name: 'g' });
    expect(GradientReversal.className).toBe('GradientReversal');
    expect(grl.getClassName()).toBe('GradientReversal');
    const config = grl.getConfig();
    expect(config).toMatchObject({ name: 'g', lambda: 0.3, schedule: { kind: 'constant', value: 0.3 }, progress: 0, trainable: false });
    const copy = GradientReversal.fromConfig(GradientReversal, config) as GradientReversal;
    expect(copy.lambda).toBe(0.3);
    expect(new GradientReversal().lambda).toBe(1);
    expect(grl.weights).toHaveLength(0);

    const bad: Array<[() => unknown, string, RegExp]> = [
      [() => new GradientReversal({ lambda: Number.NaN }), 'E_GRL_LAMBDA', /finite number, got NaN/],
      [() => new GradientReversal({ schedule: { kind: 'dann' }, lambda: 1 }), 'E_GRL_CONFIG', /lambda 1 contradicts schedule/],
      [() => new GradientReversal({ progress: 1.5 }), 'E_GRL_PROGRESS', /progress must be a number in \[0, 1\], got 1.5/],
      [() => grl.setProgress(-1), 'E_GRL_PROGRESS', /setProgress\(p\)/],
      [() => grl.setSchedule({ kind: 'linear' } as never), 'E_GRL_SCHEDULE', /from must be a finite number/],
      [() => grl.call([tf.zeros([1]), tf.zeros([1])], {}), 'E_GRL_INPUT', /exactly one input tensor, got 2/],
    ];
    for (const [fn, code, message] of bad) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(GrlError);
      expect((caught as GrlError).code).toBe(code);
      expect((caught as Error).message).toMatch(message);
    }
  });
});
