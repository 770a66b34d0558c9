import { describe, expect, it } from 'vitest';
import { limitSamples } from './subset.js';
import type { Sample } from './types.js';

// A class-folder listing: 7 classes of 20 samples each, sorted by class (what `folder:` yields).
const listing: Sample[] = Array.from({ length: 140 }, (_, i) => ({
  id: `c${Math.floor(i / 20)}/${i % 20}`,
  expression: Math.floor(i / 20),
  image: { kind: 'pixels', width: 1, height: 1, channels: 3, data: new Uint8Array(3) },
}));

const counts = (s: readonly Sample[]) => Array.from({ length: 7 }, (_, c) => s.filter((x) => x.expression === c).length);

describe('limitSamples', () => {
  it('spreads the subset over every class instead of taking a prefix', () => {
    const sub = limitSamples(listing, 64, { seed: 0 });
    expect(sub).toHaveLength(64);
    // 64 = 7 * 9 + 1: each class gives 9, one class 10.
    expect(counts(sub).sort((a, b) => a - b)).toEqual([9, 9, 9, 9, 9, 9, 10]);
    expect(new Set(sub.map((s) => s.id)).size).toBe(64);
    // Dataset order is kept.
    const pos = sub.map((s) => listing.indexOf(s));
    expect(pos).toEqual([...pos].sort((a, b) => a - b));
  });

  it('is seeded: same seed same subset, another seed another one', () => {
    const ids = (seed: number) => limitSamples(listing, 20, { seed }).map((s) => s.id);
    expect(ids(3)).toEqual(ids(3));
    expect(ids(3)).not.toEqual(ids(4));
    expect(counts(limitSamples(listing, 7, { seed: 9 }))).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  it('small classes give what they have; the rest comes from the others', () => {
    const skewed = [...listing.slice(0, 2), ...listing.slice(20, 140)]; // class 0 has 2 samples
    const c = counts(limitSamples(skewed, 35, { seed: 1 }));
    expect(c[0]).toBe(2);
    expect(c.reduce((a, b) => a + b, 0)).toBe(35);
    expect(Math.max(...c.slice(1)) - Math.min(...c.slice(1))).toBeLessThanOrEqual(1);
  });

  it('spreads over a factor for factor-only data, and leaves small sets alone', () => {
    const byAge: Sample[] = listing.map((s, i) => ({ id: s.id, image: s.image, factors: { age: i < 120 ? 0 : 1 } }));
    const sub = limitSamples(byAge, 10, { seed: 0, classOf: (s) => s.factors?.age });
    expect(sub.filter((s) => s.factors!.age === 1)).toHaveLength(5);
    expect(limitSamples(listing, undefined)).toBe(listing);
    expect(limitSamples(listing, 500)).toBe(listing);
    expect(() => limitSamples(listing, 2.5)).toThrow(/whole number/);
  });
});
