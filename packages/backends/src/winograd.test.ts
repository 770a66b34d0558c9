import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { useBackend } from './backends.js';
import { setWasmWinograd, setWasmWinogradTile, setWasmWinogradTraining, wasmWinogradTile, winogradStats, type WinogradTile } from './winograd.js';
import { WINOGRAD_WASM_PLAIN, WINOGRAD_WASM_SHARED } from './winograd-module.js';
import { WINOGRAD_VARIANTS } from './winograd-matrices.js';
import { assembleWinograd } from '../../../tools/wasm/assemble.js';

/*
 * Winograd F(4x4,3x3) and F(6x6,3x3) inference convolutions on wasm, checked against the CPU backend's direct
 * convolution (an independent JS implementation) and against the matrices' defining identity.
 */

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

function randn(rng: Rng, shape: number[], scale = 1): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * scale;
  return out;
}

beforeAll(async () => {
  await import('@tensorflow/tfjs-backend-cpu');
  await useBackend('wasm');
});

afterEach(() => setWasmWinogradTile('auto'));

describe('Winograd F(4x4,3x3) and F(6x6,3x3) on wasm', () => {
  for (const { m, alpha, BT, G, AT } of WINOGRAD_VARIANTS) {
    it(`F(${m}x${m},3x3): the matrices compute a ${m}-output 1D correlation exactly (Aᵀ[(Gg)⊙(Bᵀd)] = d ⋆ g), in float64`, () => {
      expect([BT.length, BT[0]!.length, G.length, G[0]!.length, AT.length, AT[0]!.length]).toEqual([alpha, alpha, alpha, 3, m, alpha]);
      const rng = new Rng(`matrices ${m}`);
      for (let trial = 0; trial < 5; trial++) {
        const d = Array.from({ length: alpha }, () => rng.normal());
        const g = Array.from({ length: 3 }, () => rng.normal());
        const u = G.map((row) => row.reduce((s, c, k) => s + c * (g[k] as number), 0));
        const v = BT.map((row) => row.reduce((s, c, k) => s + c * (d[k] as number), 0));
        const y = AT.map((row) => row.reduce((s, c, k) => s + c * (u[k] as number) * (v[k] as number), 0));
        const want = Array.from({ length: m }, (_, i) => (d[i] as number) * (g[0] as number) + (d[i + 1] as number) * (g[1] as number) + (d[i + 2] as number) * (g[2] as number));
        y.forEach((yi, i) => expect(yi).toBeCloseTo(want[i] as number, 12));
      }
    });
  }

  it('the committed wasm module is what tools/wasm/winograd.ts and wabt produce (npm run build:wasm)', async () => {
    const { shared, plain } = await assembleWinograd();
    expect(Buffer.from(shared).toString('base64')).toBe(WINOGRAD_WASM_SHARED);
    expect(Buffer.from(plain).toString('base64')).toBe(WINOGRAD_WASM_PLAIN);
  });

  const cases: Array<{ x: [number, number, number, number]; co: number; pad: Pad }> = [
    { x: [2, 9, 7, 16], co: 16, pad: 'same' },
    { x: [1, 12, 12, 32], co: 20, pad: 'valid' },
    { x: [3, 5, 6, 16], co: 24, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
    { x: [1, 4, 4, 16], co: 16, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
    { x: [2, 13, 11, 48], co: 32, pad: 'same' },
    // 128 F(4x4) tiles: two GEMM row chunks per slice; 36 outputs: four 8-column panels and a half one
    { x: [2, 30, 30, 64], co: 36, pad: 'same' },
    // a transformed filter over the fused path's 3 MB: three passes; F(4x4): 27 tiles in GEMM row
    // chunks of 16 (the last padded from 11 to 12 rows)
    { x: [3, 9, 9, 208], co: 204, pad: 'same' },
  ];
  for (const tile of [4, 6] as const) for (const c of cases) {
    it(`F(${tile}x${tile},3x3) matches the cpu backend's direct convolution: x ${c.x.join('x')} -> ${c.co} channels, pad ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad.slice(1, 3))}`, async () => {
      const rng = new Rng(`wg ${c.x} ${c.co}`);
      const fshape: [number, number, number, number] = [3, 3, c.x[3], c.co];
      const xv = randn(rng, c.x);
      const wv = randn(rng, fshape, 0.2);
      await tf.setBackend('cpu');
      const want = tf.conv2d(tf.tensor4d(xv, c.x), tf.tensor4d(wv, fshape), 1, c.pad);
      const wantV = await want.data();
      const wantShape = want.shape;
      want.dispose();

      await tf.setBackend('wasm');
      setWasmWinogradTile(tile);
      const x = tf.tensor4d(xv, c.x);
      const f = tf.tensor4d(wv, fshape);
      const before = winogradStats().convolutions;
      const first = tf.conv2d(x, f, 1, c.pad); // first use of the filter: direct
      expect(winogradStats().convolutions).toBe(before);
      const second = tf.conv2d(x, f, 1, c.pad); // frozen filter: Winograd
      expect(winogradStats().convolutions).toBe(before + 1);
      expect(second.shape).toEqual(wantShape);
      const scale = Math.max(1, ...Array.from(wantV, Math.abs));
      for (const [what, t] of [['direct', first], ['winograd', second]] as const) {
        const got = await t.data();
        let maxDiff = 0;
        for (let i = 0; i < wantV.length; i++) maxDiff = Math.max(maxDiff, Math.abs((got[i] as number) - (wantV[i] as number)));
        // The transforms add and subtract terms up to ~8x (F(4x4)) and ~30x (F(6x6)) the output:
        // a few float32 ulps more.
        expect(maxDiff / scale, `${what}: max abs diff ${maxDiff}`).toBeLessThan(what === 'direct' ? 1e-5 : tile === 4 ? 3e-5 : 1e-4);
      }
      tf.dispose([x, f, first, second]);
    });
  }

  it("'auto' takes F(6x6) where F(4x4)'s tiles waste most (a 6x6 map), F(4x4) elsewhere; one filter's two transforms are cached and freed together", async () => {
    await tf.setBackend('wasm');
    expect(wasmWinogradTile()).toBe('auto');
    const backend = tf.backend() as unknown as { dataIdMap: { numDataIds(): number } };
    const rng = new Rng('wg auto');
    const f = tf.tensor4d(randn(rng, [3, 3, 16, 16], 0.2), [3, 3, 16, 16]);
    const g = tf.tensor4d(randn(rng, [3, 3, 16, 16], 0.2), [3, 3, 16, 16]);
    const x6 = tf.tensor4d(randn(rng, [2, 6, 6, 16]), [2, 6, 6, 16]);
    const x8 = tf.tensor4d(randn(rng, [2, 8, 8, 16]), [2, 8, 8, 16]);
    tf.conv2d(x6, f, 1, 'same').dispose(); // first uses: direct
    tf.conv2d(x8, g, 1, 'same').dispose();
    const ids = backend.dataIdMap.numDataIds();
    tf.conv2d(x6, f, 1, 'same').dispose();
    expect(backend.dataIdMap.numDataIds()).toBe(ids + 1); // F(6x6): its 8x8 transformed slices, packed in one tensor
    tf.conv2d(x8, f, 1, 'same').dispose();
    expect(backend.dataIdMap.numDataIds()).toBe(ids + 2); // and F(4x4)'s 6x6 slices
    f.dispose();
    tf.conv2d(x8, g, 1, 'same').dispose(); // sweeps f's two transforms, transforms g for F(4x4)
    expect(backend.dataIdMap.numDataIds()).toBe(ids - 1 + 1);
    expect(() => setWasmWinogradTile(5 as unknown as WinogradTile)).toThrow(/tile must be 'auto', 4 or 6, got 5/);
    tf.dispose([g, x6, x8]);
  });

  it('never uses a cached filter while gradients are recorded, and small training convolutions stay direct: tf.grad through a frozen filter equals the direct path bit for bit', async () => {
    await tf.setBackend('wasm');
    const rng = new Rng('wg grad');
    const x = tf.tensor4d(randn(rng, [2, 8, 8, 16]), [2, 8, 8, 16]);
    const f = tf.tensor4d(randn(rng, [3, 3, 16, 16], 0.2), [3, 3, 16, 16]);
    const loss = (xx: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, f, 1, 'same'), tf.sin(tf.reshape(tf.range(0, 2 * 8 * 8 * 16), [2, 8, 8, 16]))));
    tf.conv2d(x, f, 1, 'same').dispose(); // the filter is now "seen": inference would use Winograd
    const before = winogradStats().convolutions;
    const g1 = tf.grad(loss)(x);
    expect(winogradStats().convolutions).toBe(before);
    setWasmWinograd(false);
    const g2 = tf.grad(loss)(x);
    setWasmWinograd(true);
    expect(Array.from(await g1.data())).toEqual(Array.from(await g2.data()));
    tf.dispose([x, f, g1, g2]);
  });

  // Training: forward and input-gradient convolutions with a per-call filter transform, from 64
  // F(4x4) tiles over the batch; the variant is chosen as in inference (F(6x6) on 6x6 maps).
  const trainingCases: Array<{ what: string; xs: [number, number, number, number]; co: number; tol: number }> = [
    { what: 'F(4x4) on 31x30 maps (4 x 8 x 8 = 256 tiles)', xs: [4, 31, 30, 16], co: 20, tol: 3e-5 },
    { what: 'F(6x6) on 6x6 maps (16 x 2 x 2 = 64 F(4x4) tiles)', xs: [16, 6, 6, 16], co: 24, tol: 1e-4 },
  ];
  for (const { what, xs, co, tol } of trainingCases) {
    it(`training: forward and input-gradient convolutions take Winograd with a per-call filter transform, ${what}, and match the cpu backend`, async () => {
      const rng = new Rng(`wg training ${what}`);
      const fs: [number, number, number, number] = [3, 3, xs[3], co];
      const ys = [xs[0], xs[1], xs[2], co];
      const xv = randn(rng, xs);
      const fv = randn(rng, fs, 0.2);
      const grads = () =>
        tf.tidy(() => {
          const weights = tf.sin(tf.reshape(tf.range(0, ys.reduce((p, q) => p * q, 1)), ys));
          const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), weights));
          const g = tf.grads(loss)([tf.tensor4d(xv, xs), tf.tensor4d(fv, fs)]);
          return tf.concat([tf.reshape(g[0]!, [-1]), tf.reshape(g[1]!, [-1])]);
        });
      await tf.setBackend('cpu');
      const want = await grads().data();
      await tf.setBackend('wasm');
      const before = winogradStats();
      const got = grads();
      const after = winogradStats();
      // The forward convolution and dx (a convolution of dy with the flipped filter); dW is a GEMM.
      expect(after.transient - before.transient).toBe(2);
      expect(after.cachedFilters).toBe(before.cachedFilters); // nothing cached: the weights change every step
      const gv = await got.data();
      got.dispose();
      let scale = 1;
      for (const w of want) scale = Math.max(scale, Math.abs(w));
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs((gv[i] as number) - (want[i] as number)));
      expect(maxDiff / scale).toBeLessThan(tol);
      // Off: the same gradients by direct convolutions only.
      setWasmWinogradTraining(false);
      try {
        const direct = grads();
        expect(winogradStats().transient).toBe(after.transient);
        const dv = await direct.data();
        direct.dispose();
        let d = 0;
        for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs((dv[i] as number) - (gv[i] as number)));
        expect(d).toBeGreaterThan(0); // Winograd really ran: its rounding differs from the direct path's
      } finally {
        setWasmWinogradTraining(true);
      }
    });
  }

  it('frees a transformed filter when its filter is disposed, leaks no tensors, and can be turned off', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { dataIdMap: { numDataIds(): number } };
    const rng = new Rng('wg cache');
    const x = tf.tensor4d(randn(rng, [1, 8, 8, 16]), [1, 8, 8, 16]);
    const run = (f: tf.Tensor4D) => tf.conv2d(x, f, 1, 'same').dispose();
    const probe = tf.tensor4d(randn(rng, [3, 3, 16, 16]), [3, 3, 16, 16]);
    run(probe);
    run(probe); // cache now holds probe's transform
    const ids = backend.dataIdMap.numDataIds();
    const tensors = tf.memory().numTensors;
    const cached = winogradStats().cachedFilters;
    const f = tf.tensor4d(randn(rng, [3, 3, 16, 16]), [3, 3, 16, 16]);
    run(f);
    run(f);
    run(f);
    expect(winogradStats().cachedFilters).toBe(cached + 1);
    expect(backend.dataIdMap.numDataIds()).toBe(ids + 1 + 1); // the filter and its transform (36 slices in one tensor; 8x8 maps: F(4x4))
    f.dispose();
    run(probe); // the next Winograd call sweeps the cache
    expect(winogradStats().cachedFilters).toBe(cached);
    expect(backend.dataIdMap.numDataIds()).toBe(ids);
    expect(tf.memory().numTensors).toBe(tensors);
    setWasmWinograd(false);
    const before = winogradStats().convolutions;
    run(probe);
    expect(winogradStats().convolutions).toBe(before);
    expect(winogradStats().cachedFilters).toBe(0);
    setWasmWinograd(true);
    tf.dispose([x, probe]);
  });
});
