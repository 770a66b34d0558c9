import { describe, expect, it } from 'vitest';
import { GrlError } from './errors.js';
import { constantLambda, dannLambda, lambdaAt, linearLambda, stepLambda, validateSchedule, type LambdaSchedule } from './schedules.js';

describe('lambda schedules', () => {
  it('dann: 2/(1+exp(-10p)) - 1 equals tanh(5p), from 0 to ~1', () => {
    expect(dannLambda(0)).toBe(0);
    // Independent closed form: 2/(1+e^-z) - 1 = tanh(z/2).
    for (const p of [0, 0.01, 0.1, 0.25, 0.5, 0.75, 1]) {
      expect(dannLambda(p)).toBeCloseTo(Math.tanh(5 * p), 14);
      expect(dannLambda(p, 4, 0.5)).toBeCloseTo(0.5 * Math.tanh(2 * p), 14);
    }
    expect(dannLambda(1)).toBeCloseTo(0.9999092042625951, 15);
    expect(dannLambda(0.1)).toBeCloseTo(0.46211715726000974, 15);
    for (let i = 1; i <= 100; i++) expect(dannLambda(i / 100)).toBeGreaterThan(dannLambda((i - 1) / 100));
  });

  it('constant, linear and step', () => {
    expect(constantLambda(0.3)).toBe(1);
    expect(constantLambda(0.3, 0.25)).toBe(0.25);
    expect(linearLambda(0)).toBe(0);
    expect(linearLambda(0.25)).toBe(0.25);
    expect(linearLambda(0.5, 1, 0)).toBe(0.5);
    expect(linearLambda(1, 0.2, 0.6)).toBeCloseTo(0.6, 15);
    const b = [0.3, 0.6];
    const v = [0, 0.5, 1];
    expect([0, 0.29, 0.3, 0.59, 0.6, 1].map((p) => stepLambda(p, b, v))).toEqual([0, 0, 0.5, 0.5, 1, 1]);
  });

  it('clamps progress to [0, 1] and rejects NaN', () => {
    expect(dannLambda(1.0000001)).toBe(dannLambda(1));
    expect(linearLambda(-0.1)).toBe(0);
    expect(linearLambda(2)).toBe(1);
    expect(() => dannLambda(Number.NaN)).toThrow(/progress p must be a number in \[0, 1\], got NaN/);
  });

  it('lambdaAt evaluates each serialisable schedule kind', () => {
    const cases: Array<[LambdaSchedule, number, number]> = [
      [{ kind: 'constant', value: 0.7 }, 0.9, 0.7],
      [{ kind: 'dann' }, 0.5, Math.tanh(2.5)],
      [{ kind: 'dann', alpha: 20, max: 2 }, 0.1, 2 * Math.tanh(1)],
      // The old name of the slope is still read (saved layers); alpha wins when both are there.
      [{ kind: 'dann', gamma: 20, max: 2 }, 0.1, 2 * Math.tanh(1)],
      [{ kind: 'dann', alpha: 20, gamma: 4, max: 2 }, 0.1, 2 * Math.tanh(1)],
      [{ kind: 'linear', from: 1, to: 0 }, 0.75, 0.25],
      [{ kind: 'step', boundaries: [0.5], values: [0.1, 1] }, 0.5, 1],
    ];
    for (const [s, p, expected] of cases) expect(lambdaAt(s, p)).toBeCloseTo(expected, 14);
  });

  it('validateSchedule names the bad field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [null, /schedule must be an object/],
      [{ kind: 'cosine' }, /kind must be 'constant', 'dann', 'linear' or 'step', got "cosine"/],
      [{ kind: 'constant' }, /value must be a finite number, got undefined/],
      [{ kind: 'dann', gamma: Number.NaN }, /gamma must be a finite number, got NaN/],
      [{ kind: 'dann', alpha: 'steep' }, /alpha must be a finite number, got steep/],
      [{ kind: 'linear', from: 0 }, /to must be a finite number/],
      [{ kind: 'step', boundaries: [0.5, 0.2], values: [0, 1, 2] }, /boundaries must be strictly ascending, got \[0.5, 0.2\]/],
      [{ kind: 'step', boundaries: [0.5], values: [0] }, /values must have boundaries.length \+ 1 = 2 entries, got 1/],
      [{ kind: 'step', boundaries: 'x', values: [0] }, /boundaries must be an array of finite numbers/],
    ];
    for (const [s, message] of bad) {
      let caught: unknown;
      try {
        validateSchedule(s);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(GrlError);
      expect((caught as GrlError).code).toBe('E_GRL_SCHEDULE');
      expect((caught as Error).message).toMatch(message);
    }
    expect(() => stepLambda(0.5, [0.5], [1])).toThrow(/values must have boundaries.length \+ 1 = 2 entries, got 1/);
  });
});
