import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { centralDiff } from '../../../../tools/testing/finite-diff.js';
import { gradientReversal } from '../op.js';

// Deterministic test data without any RNG: smooth functions of the element index.
const fill = (n: number, f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));
const prod = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

// u = a * tanh(x) + x; L_rev = sum(w * sin(u)) goes through the GRL, L_plain = sum(v * u^2) does not.
interface Problem {
  x: Float64Array;
  a: Float64Array;
  w: Float64Array;
  v: Float64Array;
}
const problem = (n: number): Problem => ({
  x: fill(n, (i) => 1.5 * Math.sin(1.3 * i + 0.2)),
  a: fill(n, (i) => 0.5 + 0.3 * Math.cos(i)),
  w: fill(n, (i) => Math.cos(0.7 * i)),
  v: fill(n, (i) => 0.2 + 0.1 * Math.sin(i)),
});

// Float64 JS reference of both loss terms, independent of tfjs.
const u64 = (p: Problem, x: Float64Array) => x.map((xi, i) => p.a[i]! * Math.tanh(xi) + xi);
const lRev64 = (p: Problem, x: Float64Array) => u64(p, x).reduce((s, ui, i) => s + p.w[i]! * Math.sin(ui), 0);
const lPlain64 = (p: Problem, x: Float64Array) => u64(p, x).reduce((s, ui, i) => s + p.v[i]! * ui * ui, 0);
function tfTerms(p: Problem, shape: number[]) {
  const a = tf.tensor(Float32Array.from(p.a), shape);
  const w = tf.tensor(Float32Array.from(p.w), shape);
  const v = tf.tensor(Float32Array.from(p.v), shape);
  const u = (x: tf.Tensor) => tf.add(tf.mul(a, tf.tanh(x)), x);
  const rev = (t: tf.Tensor) => tf.sum(tf.mul(w, tf.sin(t)));
  const plain = (t: tf.Tensor) => tf.sum(tf.mul(v, tf.square(t)));
  return { u, rev, plain, dispose: () => tf.dispose([a, w, v]) };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThan(atol);
}

const SHAPES = [[5], [2, 3], [2, 2, 3], [2, 1, 2, 3]];
const LAMBDAS = [1, 0.5, 2.5, 0.1];

/**
 * The numeric gradient checks of gradientReversal on one backend (registered and importable by the
 * caller): forward identity, -lambda x tf.grad and float64 finite differences for ranks 1-4, a
 * bypass branch, lambda 0, tensor and variable lambda, no leaks.
 */
export function gradientReversalSuite(backend: string, options: { fdTolerance?: number } = {}): void {
  // Agreement of the backend's float32 gradient with float64 finite differences; GPU sin/tanh are
  // less exact than JS Math, so WebGPU gets a looser bound. The GRL-specific check (-lambda times
  // the backend's own tf.grad) stays tight everywhere.
  const fdTol = options.fdTolerance ?? 2e-5;
  describe(`gradientReversal on the ${backend} backend`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(backend)).toBe(true);
      expect(tf.getBackend()).toBe(backend);
    });

    it('is the identity in the forward pass (values, shape, dtype)', async () => {
      for (const shape of SHAPES) {
        const x = tf.tensor(Float32Array.from(problem(prod(shape)).x), shape);
        const y = gradientReversal(x, 0.7);
        expect(y).not.toBe(x);
        expect(y.shape).toEqual(shape);
        expect(y.dtype).toBe('float32');
        expect(Array.from(await y.data())).toEqual(Array.from(await x.data()));
        tf.dispose([x, y]);
      }
    });

    for (const shape of SHAPES) {
      it(`rank ${shape.length}: gradient = -lambda * plain gradient (tf.grad and float64 finite differences)`, async () => {
        const p = problem(prod(shape));
        const t = tfTerms(p, shape);
        const x = tf.tensor(Float32Array.from(p.x), shape);
        const gPlainRev = tf.grad((xx: tf.Tensor) => t.rev(t.u(xx)))(x);
        const gBypass = tf.grad((xx: tf.Tensor) => t.plain(t.u(xx)))(x);
        const fdRev = centralDiff((xx) => lRev64(p, xx), p.x);
        const fdBypass = centralDiff((xx) => lPlain64(p, xx), p.x);
        // The tfjs plain gradient itself agrees with the float64 reference.
        const plainRev = await gPlainRev.data();
        const bypass = await gBypass.data();
        expectClose(plainRev, fdRev, fdTol);
        for (const lambda of LAMBDAS) {
          // Only the path through the GRL is reversed.
          const onlyRev = tf.grad((xx: tf.Tensor) => t.rev(gradientReversal(t.u(xx), lambda)))(x);
          expect(onlyRev.shape).toEqual(shape);
          expectClose(await onlyRev.data(), plainRev.map((g) => -lambda * g), 1e-6 * Math.max(1, lambda));
          expectClose(await onlyRev.data(), fdRev.map((g) => -lambda * g), fdTol * Math.max(1, lambda));
          // Mixed: one branch through the GRL, one around it.
          const mixed = tf.grad((xx: tf.Tensor) => {
            const u = t.u(xx);
            return tf.add(t.rev(gradientReversal(u, lambda)), t.plain(u));
          })(x);
          const expectedMixed = fdRev.map((g, i) => -lambda * g + fdBypass[i]!);
          expectClose(await mixed.data(), expectedMixed, fdTol * Math.max(1, lambda));
          const fromTfGrad = plainRev.map((g, i) => -lambda * g + bypass[i]!);
          expectClose(await mixed.data(), fromTfGrad, 1e-5 * Math.max(1, lambda));
          tf.dispose([onlyRev, mixed]);
        }
        tf.dispose([x, gPlainRev, gBypass]);
        t.dispose();
      });
    }

    it('lambda 0 gives an exactly zero gradient', async () => {
      const p = problem(6);
      const t = tfTerms(p, [6]);
      const x = tf.tensor(Float32Array.from(p.x));
      for (const lambda of [0, tf.scalar(0)]) {
        const g = tf.grad((xx: tf.Tensor) => t.rev(gradientReversal(t.u(xx), lambda)))(x);
        expect(Array.from(await g.data()).every((v) => v === 0)).toBe(true);
        tf.dispose([g, lambda as tf.Tensor]);
      }
      tf.dispose(x);
      t.dispose();
    });

    it('accepts a tensor lambda: same gradient as the number, zero gradient for lambda, lambda not disposed', async () => {
      const p = problem(6);
      const t = tfTerms(p, [2, 3]);
      const x = tf.tensor(Float32Array.from(p.x), [2, 3]);
      const fdRev = centralDiff((xx) => lRev64(p, xx), p.x);
      for (const lam of [tf.scalar(0.75), tf.tensor1d([0.75])]) {
        const [gx, gl] = tf.grads((xx: tf.Tensor, ll: tf.Tensor) => t.rev(gradientReversal(t.u(xx), ll)))([x, lam]);
        expect(gx!.shape).toEqual([2, 3]);
        expectClose(await gx!.data(), fdRev.map((g) => -0.75 * g), fdTol);
        expect(gl!.shape).toEqual(lam.shape);
        expect(Array.from(await gl!.data())).toEqual([0]);
        expect(lam.isDisposed).toBe(false);
        tf.dispose([gx!, gl!, lam]);
      }
      // A variable lambda can change between steps without rebuilding anything.
      const lamVar = tf.variable(tf.scalar(1), false);
      const f = (xx: tf.Tensor) => t.rev(gradientReversal(t.u(xx), lamVar));
      for (const value of [1, -0.5, 3]) {
        lamVar.assign(tf.scalar(value));
        const g = tf.grad(f)(x);
        expectClose(await g.data(), fdRev.map((d) => -value * d), fdTol * Math.max(1, Math.abs(value)));
        g.dispose();
      }
      tf.dispose([x, lamVar]);
      t.dispose();
    });

    it('leaks no tensors across repeated forward/backward passes', () => {
      const p = problem(6);
      const t = tfTerms(p, [6]);
      const x = tf.tensor(Float32Array.from(p.x));
      const lam = tf.scalar(0.3);
      const step = () => {
        const g1 = tf.grad((xx: tf.Tensor) => t.rev(gradientReversal(t.u(xx), 0.3)))(x);
        const g2 = tf.grad((xx: tf.Tensor) => t.rev(gradientReversal(t.u(xx), lam)))(x);
        const y = tf.tidy(() => gradientReversal(x, lam));
        tf.dispose([g1, g2, y]);
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, lam]);
      t.dispose();
    });
  });
}
