import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { describe, expect, it } from 'vitest';
import { CheckpointFormatError } from './errors.js';
import { parseTorchCheckpoint } from './torch.js';

// Decompression bombs in .pth zips (issue 17): only entries the pickle references are inflated,
// each no further than the bytes its storage reference declares.
const tiny = new Uint8Array(readFileSync(join(import.meta.dirname, '../../test/import-fixtures/tiny.pth')));
const entries = unzipSync(tiny);
const prefix = Object.keys(entries).find((n) => n.endsWith('/data.pkl'))!.slice(0, -'data.pkl'.length);
const storage = Object.keys(entries).find((n) => n.startsWith(`${prefix}data/`))!;

/** A copy of tiny.pth with entries replaced or added (`level` 0 = stored, 9 = deflated). */
function rebuild(changes: Record<string, { data: Uint8Array; level: 0 | 9 }>): Uint8Array {
  const z: Zippable = {};
  for (const [n, d] of Object.entries(entries)) z[n] = [d, { level: 0 }];
  for (const [n, c] of Object.entries(changes)) z[n] = [c.data, { level: c.level }];
  return zipSync(z);
}

/** Rewrites the uncompressed size of `entry` in its local header and its central directory record. */
function lieAboutSize(zip: Uint8Array, entry: string, size: number): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  const nameBytes = new TextEncoder().encode(entry);
  const nameAt = (at: number) => nameBytes.every((b, i) => out[at + i] === b);
  for (let i = 0; i + 46 < out.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === 0x04034b50 && view.getUint16(i + 26, true) === nameBytes.length && nameAt(i + 30)) view.setUint32(i + 22, size, true);
    if (sig === 0x02014b50 && view.getUint16(i + 28, true) === nameBytes.length && nameAt(i + 46)) view.setUint32(i + 24, size, true);
  }
  return out;
}

describe('.pth decompression bombs (issue 17)', () => {
  const reference = parseTorchCheckpoint(tiny, { name: 'tiny.pth' });

  it('an entry the pickle never references is never inflated (a corrupt one does not even matter)', () => {
    const unused = `${prefix}data/unused`;
    const garbage = lieAboutSize(rebuild({ [unused]: { data: new Uint8Array(4 << 20), level: 9 } }), unused, 0x7ffffff0);
    // Corrupt its deflate stream too (block type 3 does not exist): inflating it would fail.
    const view = new DataView(garbage.buffer);
    const name = new TextEncoder().encode(unused);
    for (let i = 0; i + 30 < garbage.length; i++) {
      if (view.getUint32(i, true) === 0x04034b50 && view.getUint16(i + 26, true) === name.length && name.every((b, j) => garbage[i + 30 + j] === b)) {
        garbage.fill(0xff, i + 30 + name.length + view.getUint16(i + 28, true), i + 30 + name.length + view.getUint16(i + 28, true) + 16);
      }
    }
    const sd = parseTorchCheckpoint(garbage, { name: 'extra.pth' });
    expect([...sd.keys()]).toEqual([...reference.keys()]);
  });

  it('a referenced storage that declares more bytes than its reference is refused before inflating', () => {
    const big = new Uint8Array(entries[storage]!.length + (64 << 20));
    big.set(entries[storage]!);
    const bomb = rebuild({ [storage]: { data: big, level: 9 } });
    expect(bomb.length).toBeLessThan(1 << 20);
    const err = (() => {
      try {
        parseTorchCheckpoint(bomb, { name: 'bomb.pth' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CheckpointFormatError);
    expect((err as Error).message).toMatch(new RegExp(`bomb\\.pth.*zip entry '${storage}' declares ${big.length} bytes, more than the ${entries[storage]!.length} it can hold; refusing to inflate it`));
  });

  it('a storage whose header lies about its size is stopped while inflating, at the size its reference declares', () => {
    const big = new Uint8Array(entries[storage]!.length + (64 << 20));
    big.set(entries[storage]!);
    const liar = lieAboutSize(rebuild({ [storage]: { data: big, level: 9 } }), storage, entries[storage]!.length);
    expect(() => parseTorchCheckpoint(liar, { name: 'liar.pth' })).toThrow(new RegExp(`zip entry '${storage}' inflates to more than ${entries[storage]!.length} bytes \\(it declares ${entries[storage]!.length}\\); refusing a decompression bomb`));
  });

  it('a deflated storage of the right size still loads, with the same values', () => {
    const sd = parseTorchCheckpoint(rebuild({ [storage]: { data: entries[storage]!, level: 9 } }), { name: 'deflated.pth' });
    for (const [k, v] of reference) expect(Array.from(sd.get(k)!.data as ArrayLike<number>), k).toEqual(Array.from(v.data as ArrayLike<number>));
  });
});

// Stride-0 views (issue 24, case 3): a tiny .pth whose tensors repeat one stored float.
const enc = new TextEncoder();
const su = (s: string): number[] => [0x8c, enc.encode(s).length, ...enc.encode(s)]; // SHORT_BINUNICODE
const int = (n: number): number[] => (n < 256 ? [0x4b, n] : [0x4d, n & 0xff, n >> 8]); // BININT1 / BININT2
const tuple = (xs: number[]): number[] => [0x28, ...xs.flatMap(int), 0x74]; // MARK ... TUPLE

/** A .pth (tiny.pth's zip with a new data.pkl) holding `tensors` views of one storage of `count` floats. */
function viewsPth(count: number, tensors: Array<{ size: number[]; stride: number[] }>): Uint8Array {
  const body = tensors.flatMap((t, i) => [
    ...su(`t${i}`),
    ...enc.encode('ctorch._utils\n_rebuild_tensor_v2\n'),
    0x28, // MARK: the args
    0x28, ...su('storage'), ...enc.encode('ctorch\nFloatStorage\n'), ...su('bomb'), ...su('cpu'), ...int(count), 0x74, 0x51, // BINPERSID
    ...int(0),
    ...tuple(t.size),
    ...tuple(t.stride),
    0x89, // NEWFALSE
    0x74, // TUPLE
    0x52, // REDUCE
    0x73, // SETITEM
  ]);
  const pkl = Uint8Array.from([0x80, 0x02, 0x7d, ...body, 0x2e]);
  return rebuild({ [`${prefix}data.pkl`]: { data: pkl, level: 0 }, [`${prefix}data/bomb`]: { data: new Uint8Array(4 * count), level: 0 } });
}

describe('.pth stride-0 expansion bombs (issue 24, case 3)', () => {
  it('a view repeating one float 16383x16383 times is refused before anything is allocated', () => {
    const bomb = viewsPth(1, [{ size: [16383, 16383], stride: [0, 0] }]);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const before = process.memoryUsage().rss;
    let err: unknown;
    try {
      parseTorchCheckpoint(bomb, { name: 'expand.pth' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointFormatError);
    expect((err as Error).message).toMatch(/expand\.pth.*view of size \[16383, 16383\], stride \[0, 0\] materialises 268402689 elements from a storage of 1; .*more than the 16777216 allowed/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
  });

  it('many smaller expanded views count together; a small expansion still loads', () => {
    const many = viewsPth(1, Array.from({ length: 20 }, () => ({ size: [1024, 1024], stride: [0, 0] })));
    expect(() => parseTorchCheckpoint(many, { name: 'many.pth' })).toThrow(/repeat \d+ elements beyond their storages, more than the 16777216 allowed/);
    const sd = parseTorchCheckpoint(viewsPth(4, [{ size: [3, 4], stride: [0, 1] }]), { name: 'ok.pth' });
    expect(sd.get('t0')!.shape).toEqual([3, 4]);
    expect(sd.get('t0')!.data.length).toBe(12);
  });
});
