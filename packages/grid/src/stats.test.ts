import { describe, expect, it } from 'vitest';
import { summarise, tQuantile975 } from './stats.js';

describe('Student t and summaries', () => {
  it('gives the 0.975 quantiles of t (table and expansion)', () => {
    expect(tQuantile975(1)).toBeCloseTo(12.7062, 4);
    expect(tQuantile975(2)).toBeCloseTo(4.3027, 4);
    expect(tQuantile975(9)).toBeCloseTo(2.2622, 4);
    expect(tQuantile975(30)).toBeCloseTo(2.0423, 4);
    // R: qt(0.975, c(31, 60, 120, 1000))
    expect(tQuantile975(31)).toBeCloseTo(2.039513, 4);
    expect(tQuantile975(60)).toBeCloseTo(2.000298, 5);
    expect(tQuantile975(120)).toBeCloseTo(1.979930, 5);
    expect(tQuantile975(1000)).toBeCloseTo(1.962339, 5);
    expect(() => tQuantile975(0)).toThrow(/degrees of freedom/);
    expect(() => tQuantile975(2.5)).toThrow(/whole number/);
  });

  it('summarises mean, sample std and the t interval', () => {
    const s = summarise([0.1, 0.2, 0.3]);
    expect(s.n).toBe(3);
    expect(s.mean).toBeCloseTo(0.2, 12);
    expect(s.std).toBeCloseTo(0.1, 12);
    expect(s.ci95).toBeCloseTo((4.30265273 * 0.1) / Math.sqrt(3), 9);
    expect(s.low).toBeCloseTo(0.2 - s.ci95, 12);
    expect(s.high).toBeCloseTo(0.2 + s.ci95, 12);
    const one = summarise([0.5]);
    expect(one.mean).toBe(0.5);
    expect(one.std).toBeNaN();
    expect(one.ci95).toBeNaN();
    expect(summarise([]).n).toBe(0);
    expect(() => summarise([0.1, Number.NaN])).toThrow(/non-finite/);
  });
});
