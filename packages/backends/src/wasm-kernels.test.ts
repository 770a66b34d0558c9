import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { useBackend } from './backends.js';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels, WASM_TRAINING_KERNELS } from './wasm-kernels.js';
import { on, randn } from './test-utils/compare.js';

/*
 * Every kernel registered on wasm is checked against the tfjs CPU backend (an independent,
 * straightforward JS implementation) on the same inputs.
 */

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

function expectClose(got: { v: Float32Array; shape: number[] }, want: { v: Float32Array; shape: number[] }, what: string): void {
  expect(got.shape, what).toEqual(want.shape);
  let scale = 1;
  for (const w of want.v) scale = Math.max(scale, Math.abs(w));
  let maxDiff = 0;
  for (let i = 0; i < want.v.length; i++) maxDiff = Math.max(maxDiff, Math.abs((got.v[i] ?? NaN) - (want.v[i] ?? NaN)));
  expect(maxDiff / scale, `${what}: max abs diff ${maxDiff} (scale ${scale})`).toBeLessThan(1e-4);
}

beforeAll(async () => {
  await import('@tensorflow/tfjs-backend-cpu');
  await useBackend('wasm');
  await useBackend('cpu');
});

interface ConvCase {
  x: [number, number, number, number];
  k: number;
  co: number;
  stride: number | [number, number];
  pad: Pad;
}

const explicit: Pad = [[0, 0], [1, 2], [0, 1], [0, 0]];
const CONV_CASES: ConvCase[] = [
  { x: [1, 5, 5, 2], k: 1, co: 3, stride: 1, pad: 'valid' },
  { x: [2, 6, 6, 3], k: 1, co: 4, stride: 2, pad: 'same' },
  { x: [3, 7, 7, 2], k: 3, co: 4, stride: 1, pad: 'same' },
  { x: [2, 7, 7, 3], k: 3, co: 2, stride: 2, pad: 'same' },
  { x: [2, 8, 8, 3], k: 3, co: 2, stride: 2, pad: 'same' },
  { x: [1, 9, 8, 2], k: 3, co: 3, stride: 2, pad: 'valid' },
  { x: [2, 9, 7, 2], k: 3, co: 3, stride: [2, 1], pad: explicit },
  { x: [1, 11, 11, 3], k: 7, co: 4, stride: 2, pad: 'same' },
  { x: [2, 10, 9, 2], k: 7, co: 2, stride: 1, pad: 'valid' },
  { x: [1, 6, 6, 4], k: 3, co: 5, stride: 3, pad: 'same' },
  // Padding 2 on a 3x3/2 conv: one phase starts past dy's first row (the crop path).
  { x: [2, 8, 7, 2], k: 3, co: 3, stride: 2, pad: [[0, 0], [2, 1], [2, 2], [0, 0]] },
  { x: [1, 10, 10, 3], k: 2, co: 2, stride: 2, pad: 'valid' },
  // Cin % 4 == 0 and Cout % 8 == 0: dW by dfd's wasm GEMM (4 image-range partial sums).
  { x: [3, 7, 7, 4], k: 3, co: 8, stride: 1, pad: 'same' },
  { x: [2, 9, 8, 8], k: 3, co: 16, stride: 2, pad: 'same' },
  { x: [2, 9, 7, 4], k: 3, co: 8, stride: [2, 1], pad: explicit },
  { x: [1, 11, 11, 4], k: 7, co: 8, stride: 2, pad: 'same' },
  { x: [2, 6, 6, 8], k: 1, co: 8, stride: 2, pad: 'same' },
  { x: [5, 8, 7, 4], k: 3, co: 8, stride: 2, pad: [[0, 0], [2, 1], [2, 2], [0, 0]] },
  { x: [1, 6, 6, 4], k: 3, co: 8, stride: 3, pad: 'same' },
  // Taps whose every output row reads padding (kh = 0, 1): no pixels, dW rows exactly 0.
  { x: [2, 1, 5, 4], k: 3, co: 8, stride: [3, 1], pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
];

function caseName(c: ConvCase): string {
  return `x ${c.x.join('x')} k${c.k} co${c.co} s${String(c.stride)} ${typeof c.pad === 'string' ? c.pad : 'explicit'}`;
}

describe('wasm training kernels vs the cpu backend', () => {
  it('registers every kernel it lists', () => {
    for (const name of WASM_TRAINING_KERNELS) expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
  });

  for (const c of CONV_CASES) {
    it(`conv2d gradients (dx, dW): ${caseName(c)}`, async () => {
      const rng = new Rng(`${caseName(c)}`);
      const w = [c.k, c.k, c.x[3], c.co] as [number, number, number, number];
      const xv = randn(rng, c.x);
      const wv = randn(rng, w);
      const grads = (i: 0 | 1) => () =>
        tf.tidy(() => {
          const x = tf.tensor4d(xv, c.x);
          const f = tf.tensor4d(wv, w);
          // A fixed non-uniform upstream gradient so every dy element matters.
          const loss = (a: tf.Tensor, b: tf.Tensor) => {
            const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
            return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
          };
          return tf.grads(loss)([x, f])[i] as tf.Tensor;
        });
      expectClose(await on('wasm', grads(0)), await on('cpu', grads(0)), `dx ${caseName(c)}`);
      expectClose(await on('wasm', grads(1)), await on('cpu', grads(1)), `dW ${caseName(c)}`);
    });
  }

  it('matMul with every transpose combination, batched and broadcast', async () => {
    const rng = new Rng('matmul');
    const shapes: Array<[number[], number[]]> = [
      [[5, 7], [7, 3]],
      [[2, 5, 7], [2, 7, 3]],
      [[1, 4, 6], [3, 6, 2]],
    ];
    for (const [as, bs] of shapes) {
      const av = randn(rng, as);
      const bv = randn(rng, bs);
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const r = as.length;
          const swap = (s: number[]) => [...s.slice(0, r - 2), s[r - 1] ?? 0, s[r - 2] ?? 0];
          const f = () =>
            tf.tidy(() => {
              let a = tf.tensor(av, as);
              let b = tf.tensor(bv, bs);
              const perm = [...Array(r).keys()];
              perm[r - 2] = r - 1;
              perm[r - 1] = r - 2;
              if (ta) a = tf.reshape(tf.transpose(a, perm), swap(as));
              if (tb) b = tf.reshape(tf.transpose(b, perm), swap(bs));
              return tf.matMul(a, b, ta, tb);
            });
          expectClose(await on('wasm', f), await on('cpu', f), `matMul ${as} ${bs} tA=${ta} tB=${tb}`);
        }
      }
    }
  });

  for (const [k, stride, pad] of [[3, 2, 'same'], [3, 1, 'same'], [2, 1, 'valid'], [2, 2, 'same'], [3, 2, 'valid'], [1, 1, 'valid']] as const) {
    it(`maxPool and avgPool gradients: ${k}x${k} stride ${stride} ${pad}`, async () => {
      const rng = new Rng(`pool ${k} ${stride} ${pad}`);
      const shape: [number, number, number, number] = [2, 7, 6, 5];
      const xv = randn(rng, shape);
      for (const pool of [tf.maxPool, tf.avgPool]) {
        const g = () =>
          tf.tidy(() =>
            tf.grad((x: tf.Tensor) => {
              const y = pool(x as tf.Tensor4D, k, stride, pad);
              return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(1, y.size + 1), y.shape))));
            })(tf.tensor4d(xv, shape)),
          );
        expectClose(await on('wasm', g), await on('cpu', g), `${pool === tf.maxPool ? 'max' : 'avg'}Pool grad ${k} ${stride} ${pad}`);
      }
    });
  }

  it('tile over every axis pattern (float32, int32, bool)', async () => {
    const rng = new Rng('tile');
    const cases: Array<[number[], number[]]> = [
      [[1, 1, 1, 5], [2, 3, 4, 1]],
      [[2, 3], [3, 2]],
      [[4, 1], [1, 6]],
      [[3], [5]],
      [[2, 1, 3], [1, 4, 1]],
      [[2, 2, 2, 2], [1, 1, 1, 1]],
    ];
    for (const [shape, reps] of cases) {
      const v = randn(rng, shape);
      const f = () => tf.tidy(() => tf.tile(tf.tensor(v, shape), reps));
      expectClose(await on('wasm', f), await on('cpu', f), `tile ${shape} x ${reps}`);
      const fi = () => tf.tidy(() => tf.cast(tf.tile(tf.cast(tf.mul(tf.tensor(v, shape), 100), 'int32'), reps), 'float32'));
      expectClose(await on('wasm', fi), await on('cpu', fi), `tile int32 ${shape} x ${reps}`);
      const fb = () => tf.tidy(() => tf.cast(tf.tile(tf.greater(tf.tensor(v, shape), 0), reps), 'float32'));
      expectClose(await on('wasm', fb), await on('cpu', fb), `tile bool ${shape} x ${reps}`);
    }
  });

  it('sum and mean over leading, middle, trailing and all axes, keepDims or not', async () => {
    const rng = new Rng('reduce');
    const shape = [3, 5, 4, 16];
    const v = randn(rng, shape);
    for (const axes of [[0, 1, 2], [1, 2], [0], [1], [2, 3], [3], [0, 1, 2, 3], [0, 2]]) {
      for (const keepDims of [false, true]) {
        for (const op of [tf.sum, tf.mean]) {
          const f = () => tf.tidy(() => op(tf.tensor(v, shape), axes, keepDims));
          expectClose(await on('wasm', f), await on('cpu', f), `${op === tf.sum ? 'sum' : 'mean'} ${axes} keepDims=${keepDims}`);
        }
      }
    }
    const fi = () => tf.tidy(() => tf.cast(tf.sum(tf.cast(tf.mul(tf.tensor(v, shape), 10), 'int32'), [0, 1]), 'float32'));
    expectClose(await on('wasm', fi), await on('cpu', fi), 'sum int32');
    // Many pooled runs (2244 rows = 11 runs of 204) on values far from zero, and a prime row
    // count (257: no run length, the plain JS loop).
    for (const [big, axes] of [[[4, 33, 17, 8], [0, 1, 2]], [[1, 257, 1, 8], [1]]] as const) {
      const vb = randn(rng, [...big]).map((x) => 100 + x);
      for (const op of [tf.sum, tf.mean]) {
        const f = () => tf.tidy(() => op(tf.tensor(vb, [...big]), [...axes]));
        const got = await on('wasm', f);
        const want = await on('cpu', f);
        expectClose(got, want, `${op === tf.sum ? 'sum' : 'mean'} ${big} over ${axes}`);
        // Tighter than expectClose's 1e-4 of the largest value: float64 across runs.
        want.v.forEach((w, i) => expect(Math.abs((got.v[i] ?? NaN) - w) / Math.abs(w)).toBeLessThan(2e-6));
      }
    }
  });

  it('identity (clone) shares the buffer: values survive disposing the source, and memory is freed once both are gone', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { dataIdMap: { numDataIds(): number } };
    const before = backend.dataIdMap.numDataIds();
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.clone(a);
    expect(backend.dataIdMap.numDataIds()).toBe(before + 1);
    a.dispose();
    expect(Array.from(await b.data())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b.shape).toEqual([2, 3]);
    b.dispose();
    expect(backend.dataIdMap.numDataIds()).toBe(before);
  });

  it('reverse over leading, middle and all axes (float32 and int32)', async () => {
    const rng = new Rng('reverse');
    const shape = [3, 4, 5, 17];
    const v = randn(rng, shape);
    for (const dims of [[0], [1], [0, 1], [2], [0, 2], [3], [0, 1, 2, 3]]) {
      const f = () => tf.tidy(() => tf.reverse(tf.tensor(v, shape), dims));
      expectClose(await on('wasm', f), await on('cpu', f), `reverse ${dims}`);
      const fi = () => tf.tidy(() => tf.cast(tf.reverse(tf.cast(tf.mul(tf.tensor(v, shape), 100), 'int32'), dims), 'float32'));
      expectClose(await on('wasm', fi), await on('cpu', fi), `reverse int32 ${dims}`);
    }
  });

  // C = 6: three XNNPACK passes; C = 8: one pass of dfd's wasm module.
  for (const c of [6, 8]) {
    it(`batch norm with per-channel, scalar, rank-4 and missing parameters, and its gradients: C = ${c}`, async () => {
      const rng = new Rng(`batchnorm ${c}`);
      const shape: [number, number, number, number] = [2, 5, 3, c];
      const xv = randn(rng, shape).map((v) => 3 * v + 1.5);
      const p = (s: number[], shift = 0) => randn(rng, s).map((v) => Math.abs(v) + shift);
      const params: Array<[string, number[]]> = [['[C]', [c]], ['[1,1,1,C]', [1, 1, 1, c]], ['[1]', [1]]];
      for (const [what, ps] of params) {
        const mean = randn(rng, ps);
        const variance = p(ps, 0.1);
        const offset = randn(rng, ps);
        const scale = p(ps, 0.5);
        for (const withAffine of [true, false]) {
          const f = () =>
            tf.tidy(() => {
              const t = (v: Float32Array) => tf.tensor<tf.Rank>(v, ps) as tf.Tensor1D;
              return tf.batchNorm(tf.tensor4d(xv, shape), t(mean), t(variance), withAffine ? t(offset) : undefined, withAffine ? t(scale) : undefined, 1e-3);
            });
          expectClose(await on('wasm', f), await on('cpu', f), `batchNorm ${what} affine=${withAffine}`);
        }
        // d/dx, d/dscale, d/doffset through the kernel (tfjs-core's FusedBatchNorm gradient, which
        // itself fails for rank-4 parameters on every backend).
        if (ps.length > 1) continue;
        for (const i of [0, 1, 2] as const) {
          const g = () =>
            tf.tidy(() => {
              const weights = tf.sin(tf.reshape(tf.range(0, xv.length), shape));
              const loss = (x: tf.Tensor, sc: tf.Tensor, of: tf.Tensor) =>
                tf.sum(tf.mul(tf.batchNorm(x as tf.Tensor4D, tf.tensor<tf.Rank>(mean, ps) as tf.Tensor1D, tf.tensor<tf.Rank>(variance, ps) as tf.Tensor1D, of as tf.Tensor1D, sc as tf.Tensor1D, 1e-3), weights));
              return tf.grads(loss)([tf.tensor4d(xv, shape), tf.tensor(scale, ps), tf.tensor(offset, ps)])[i] as tf.Tensor;
            });
          expectClose(await on('wasm', g), await on('cpu', g), `batchNorm ${what} gradient ${['x', 'scale', 'offset'][i]}`);
        }
      }
    });
  }

  // C = 5: the stock Prelu gradient except for the shared alpha (120 values: rows of 4 through
  // DfdPreluGrad); C = 8: DfdPreluGrad for [8], [1,1,1,8] and [1], with exact zeros in x (x > 0 is
  // strict: dx = alpha dy there).
  for (const shape of [[2, 4, 3, 5], [5, 3, 3, 8]] as Array<[number, number, number, number]>) {
    const c = shape[3];
    it(`prelu with alpha [C], [1,1,1,C] and a single shared [1], and its gradients: x ${shape.join('x')}`, async () => {
      const rng = new Rng(`prelu ${c}`);
      const xv = randn(rng, shape).map((v, i) => (i % 7 === 3 ? 0 : v));
      for (const as of [[c], [1, 1, 1, c], [1], [3, c]]) {
        const av = randn(rng, as).map((v) => 0.1 + 0.2 * v);
        const f = () => tf.tidy(() => tf.prelu(tf.tensor4d(xv, shape), tf.tensor<tf.Rank>(av, as)));
        expectClose(await on('wasm', f), await on('cpu', f), `prelu alpha ${as}`);
        for (const i of [0, 1] as const) {
          const g = () =>
            tf.tidy(() => {
              const weights = tf.cos(tf.reshape(tf.range(0, xv.length), shape));
              const loss = (x: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(tf.prelu(x, a), weights));
              return tf.grads(loss)([tf.tensor4d(xv, shape), tf.tensor(av, as)])[i] as tf.Tensor;
            });
          expectClose(await on('wasm', g), await on('cpu', g), `prelu alpha ${as} gradient ${i === 0 ? 'x' : 'alpha'}`);
        }
      }
    });
  }

  it('a conv-net train step (conv, BN by ops, PReLU, max pool, global max, matMul, softmax CE, Adam) matches cpu and leaks nothing', async () => {
    const rng = new Rng('step');
    const shapes = { w1: [3, 3, 3, 4], w2: [3, 3, 4, 6], sc: [1, 1, 4, 6], fc: [12, 5] } as const;
    const init = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, randn(rng, [...s]).map((v) => v * 0.3)]));
    const xv = randn(rng, [3, 11, 11, 3]);
    const labels = [0, 3, 4];
    const run = async (backend: 'cpu' | 'wasm') => {
      await tf.setBackend(backend);
      const vars = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.variable(tf.tensor(init[k] as Float32Array, [...s]))]));
      const alpha = tf.variable(tf.fill([4], 0.2));
      const x = tf.tensor4d(xv, [3, 11, 11, 3]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 5);
      const opt = tf.train.adam(0.01);
      const loss = () => {
        let h = tf.conv2d(x, vars.w1 as unknown as tf.Tensor4D, 2, 'same');
        const { mean, variance } = tf.moments(h, [0, 1, 2]);
        h = tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5)));
        h = tf.prelu(h, alpha as unknown as tf.Tensor4D);
        h = tf.maxPool(h, 3, 1, 'same');
        const r = tf.conv2d(h, vars.w2 as unknown as tf.Tensor4D, 2, 'same');
        h = tf.add(r, tf.conv2d(h, vars.sc as unknown as tf.Tensor4D, 2, 'same'));
        const pooled = tf.concat([tf.max(h, [1, 2]), tf.mean(h, [1, 2])], 1);
        return tf.losses.softmaxCrossEntropy(y, tf.matMul(pooled, vars.fc as unknown as tf.Tensor2D)) as tf.Scalar;
      };
      const { value, grads } = tf.variableGrads(loss, [...Object.values(vars), alpha]);
      const g0: Float32Array[] = [];
      for (const g of Object.values(grads)) g0.push((await g.data()) as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
      const losses: number[] = [];
      let before = 0;
      for (let step = 0; step < 3; step++) {
        if (step === 1) before = tf.memory().numTensors;
        const l = opt.minimize(loss, true) as tf.Scalar;
        losses.push((await l.data())[0] ?? NaN);
        l.dispose();
      }
      const leaked = tf.memory().numTensors - before;
      tf.dispose([...Object.values(vars), alpha, x, y]);
      opt.dispose();
      return { losses, leaked, g0 };
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    expect(cpu.g0.length).toBe(5);
    cpu.g0.forEach((g, i) => expectClose({ v: wasm.g0[i] as Float32Array, shape: [g.length] }, { v: g, shape: [g.length] }, `gradient of variable ${i}`));
    // Adam moves every weight by ~lr whatever the gradient's size, so later steps agree less tightly.
    expect(Math.abs((wasm.losses[0] ?? NaN) - (cpu.losses[0] ?? NaN))).toBeLessThan(1e-5);
    for (let i = 1; i < 3; i++) expect(Math.abs((wasm.losses[i] ?? NaN) - (cpu.losses[i] ?? NaN)) / (cpu.losses[i] ?? 1)).toBeLessThan(1e-3);
    expect(cpu.losses[2]).toBeLessThan(cpu.losses[0] ?? 0);
    expect(wasm.leaked).toBe(0);
  });

  it('unregister puts the stock kernels back and register re-applies ours', async () => {
    // In Node every wasm kernel is wrapped by guardWasmKernels(); compare what runs inside.
    const raw = (f: tf.KernelFunc | undefined) => (f as { dfdInner?: tf.KernelFunc } | undefined)?.dfdInner ?? f;
    const ours = raw(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc);
    const ourPreluGrad = tf.getGradient('Prelu');
    unregisterWasmTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    // tfjs-core's Prelu gradient is back, and comes back ours only with DfdPreluGrad.
    expect(tf.getKernel('DfdPreluGrad', 'wasm')).toBeUndefined();
    const stockPreluGrad = tf.getGradient('Prelu');
    expect(stockPreluGrad).not.toBe(ourPreluGrad);
    expect(raw(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc)).not.toBe(ours);
    const stockMatMul = raw(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc);
    registerWasmTrainingKernels(['Conv2DBackpropFilter']);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getGradient('Prelu')).toBe(stockPreluGrad);
    expect(raw(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc)).toBe(stockMatMul);
    unregisterWasmTrainingKernels();
    expect(raw(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc)).toBe(stockMatMul);
    registerWasmTrainingKernels();
    expect(raw(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc)).toBe(ours);
    expect(tf.getGradient('Prelu')?.gradFunc).not.toBe(stockPreluGrad?.gradFunc);
    // Re-registered kernels are guarded again.
    expect((tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc as { dfdInner?: unknown }).dfdInner).toBe(ours);
    await tf.setBackend('wasm');
    const dx = tf.conv2dTranspose(tf.ones([1, 2, 2, 1]) as tf.Tensor4D, tf.ones([3, 3, 1, 1]) as tf.Tensor4D, [1, 4, 4, 1], 1, 'valid');
    // Full correlation of a 2x2 block of ones with a 3x3 box: corner 1, edge 2, centre 4.
    expect(Array.from(await dx.data())).toEqual([1, 2, 2, 1, 2, 4, 4, 2, 2, 4, 4, 2, 1, 2, 2, 1]);
    dx.dispose();
  });
});
