import { describe, expect, it } from 'vitest';
import { bfloat16ToFloat, decodeElements, gatherStrided, halfToFloat, transposeData } from './tensor.js';

describe('element decoding', () => {
  it('decodes IEEE half and bfloat16 bit patterns exactly (closed forms)', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfToFloat(0x0400)).toBe(2 ** -14); // smallest normal
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(bfloat16ToFloat(0x3f80)).toBe(1);
    expect(bfloat16ToFloat(0x4049)).toBe(3.140625);
    expect(bfloat16ToFloat(0xff80)).toBe(-Infinity);
  });
});

describe('decodeElements', () => {
  it('reads little- and big-endian storages at unaligned offsets', () => {
    // 1.5 as float32 = 0x3fc00000; -3 as int64; 0x3c00 = half 1.0
    const le = Uint8Array.from([9, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0xc0, 0x3f]);
    const be = Uint8Array.from([9, 0x3f, 0xc0, 0x00, 0x00, 0x3f, 0xc0, 0x00, 0x00]);
    expect(Array.from(decodeElements(le, 1, 2, 'float32') as Float32Array)).toEqual([1.5, 1.5]);
    expect(Array.from(decodeElements(be, 1, 2, 'float32', false) as Float32Array)).toEqual([1.5, 1.5]);
    const i64 = Uint8Array.from([0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(Array.from(decodeElements(i64, 1, 1, 'int64') as BigInt64Array)).toEqual([-3n]);
    expect(Array.from(decodeElements(Uint8Array.from([7, 0x3c, 0x00]), 1, 1, 'float16', false) as Float32Array)).toEqual([1]);
    expect(Array.from(decodeElements(Uint8Array.from([7, 0xff, 0x01]), 1, 2, 'int8') as Int8Array)).toEqual([-1, 1]);
  });
});

describe('gatherStrided', () => {
  const storage = Float32Array.from({ length: 12 }, (_, i) => i);
  it('materialises transposed, offset and stepped views', () => {
    // base = storage viewed 3x4; transpose -> 4x3 with strides (1, 4)
    expect(Array.from(gatherStrided(storage, 0, [4, 3], [1, 4]) as Float32Array)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(Array.from(gatherStrided(storage, 5, [2, 2], [4, 1]) as Float32Array)).toEqual([5, 6, 9, 10]);
    expect(Array.from(gatherStrided(storage, 1, [2, 2], [8, 2]) as Float32Array)).toEqual([1, 3, 9, 11]);
    expect(Array.from(gatherStrided(storage, 3, [3], [0]) as Float32Array)).toEqual([3, 3, 3]); // expand()
    expect(Array.from(gatherStrided(storage, 7, [], []) as Float32Array)).toEqual([7]); // 0-d
  });
  it('refuses views that read outside the storage', () => {
    expect(() => gatherStrided(storage, 10, [2, 2], [4, 1])).toThrow(/reads elements 10\.\.15 of a storage of 12/);
  });
  it('transposes OIHW -> HWIO like numpy.transpose(2, 3, 1, 0)', () => {
    const oihw = Float32Array.from({ length: 2 * 3 * 1 * 2 }, (_, i) => i); // O=2 I=3 H=1 W=2
    const t = transposeData(oihw, [2, 3, 1, 2], [2, 3, 1, 0]);
    expect(t.shape).toEqual([1, 2, 3, 2]);
    // hwio[0][w][i][o] = oihw[o][i][0][w] = o*6 + i*2 + w
    const want: number[] = [];
    for (let w = 0; w < 2; w++) for (let i = 0; i < 3; i++) for (let o = 0; o < 2; o++) want.push(o * 6 + i * 2 + w);
    expect(Array.from(t.data as Float32Array)).toEqual(want);
  });
});
