import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';

describe('Rng', () => {
  it('is reproducible from a seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('resumes exactly from a saved state', () => {
    const a = new Rng('run-1');
    a.next();
    const state = JSON.parse(JSON.stringify(a.getState()));
    const expected = [a.next(), a.normal(), a.int(10)];
    const b = new Rng(0);
    b.setState(state);
    expect([b.next(), b.normal(), b.int(10)]).toEqual(expected);
    expect(() => b.setState([1, 2])).toThrow(RangeError);
  });

  it('has the moments of its distributions', () => {
    const r = new Rng(7);
    const n = 20000;
    let su = 0, sn = 0, sn2 = 0;
    for (let i = 0; i < n; i++) {
      su += r.next();
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(su / n).toBeCloseTo(0.5, 1);
    expect(sn / n).toBeCloseTo(0, 1);
    expect(sn2 / n).toBeCloseTo(1, 1);
    const perm = r.shuffle([...Array(10).keys()]);
    expect([...perm].sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
  });
});
