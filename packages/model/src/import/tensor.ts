/** Element types a checkpoint may store (PyTorch names). */
export type SourceDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** Element type after import: every float type becomes float32 (the only float tfjs has). */
export type TensorDtype = 'float32' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** The typed array holding an imported tensor's elements, row-major (C order, contiguous). */
export type TensorData = Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** One imported tensor, in the checkpoint's own (PyTorch) layout, contiguous. */
export interface TensorEntry {
  shape: number[];
  dtype: TensorDtype;
  /** What the file stored, e.g. `float16` for a half tensor that is now float32. */
  sourceDtype: SourceDtype;
  data: TensorData;
}

/** A flat name -> tensor map, in file order, as `model.state_dict()` in PyTorch. */
export type StateDict = Map<string, TensorEntry>;

/** Bytes per element of each source dtype. */
export const DTYPE_BYTES: Record<SourceDtype, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** The imported dtype a source dtype becomes. */
export function importedDtype(src: SourceDtype): TensorDtype {
  return src === 'float16' || src === 'bfloat16' || src === 'float64' ? 'float32' : src;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const f32buf = new Float32Array(1);
const u32view = new Uint32Array(f32buf.buffer);

/** IEEE half (binary16) bits -> number; exact, including subnormals, inf and NaN. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits -> number: the top half of a float32. */
export function bfloat16ToFloat(b: number): number {
  u32view[0] = (b & 0xffff) << 16;
  return f32buf[0]!;
}

/**
 * Decode `count` elements of `src` dtype from `bytes` (starting at byte `byteOffset`) into the
 * imported typed array. Reads through a DataView so unaligned zip entries and big-endian files
 * both work.
 */
export function decodeElements(
  bytes: Uint8Array,
  byteOffset: number,
  count: number,
  src: SourceDtype,
  littleEndian = true,
): TensorData {
  const view = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, count * DTYPE_BYTES[src]);
  const le = littleEndian;
  // Fast path: same byte order as the host -> one aligned copy, no per-element reads.
  if (le === HOST_LITTLE_ENDIAN) {
    const copy = (): ArrayBuffer => bytes.slice(byteOffset, byteOffset + count * DTYPE_BYTES[src]).buffer;
    if (src === 'float32') return new Float32Array(copy());
    if (src === 'int64') return new BigInt64Array(copy());
    if (src === 'int32') return new Int32Array(copy());
    if (src === 'int16') return new Int16Array(copy());
  }
  switch (src) {
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, le);
      return out;
    }
    case 'float64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, le);
      return out;
    }
    case 'float16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, le));
      return out;
    }
    case 'bfloat16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(view.getUint16(i * 2, le));
      return out;
    }
    case 'int64': {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(i * 8, le);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, le);
      return out;
    }
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, le);
      return out;
    }
    case 'int8':
      return new Int8Array(bytes.slice(byteOffset, byteOffset + count).buffer);
    case 'uint8':
    case 'bool':
      return bytes.slice(byteOffset, byteOffset + count);
  }
}

/** Allocate an empty typed array of the imported dtype. */
export function allocData(dtype: TensorDtype, count: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'int32':
      return new Int32Array(count);
    case 'int16':
      return new Int16Array(count);
    case 'int8':
      return new Int8Array(count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(count);
  }
}

/** Number of elements of a shape (1 for a scalar `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * How many elements the tensors of one checkpoint may materialise beyond the storages they view,
 * in total: 2^24 (64 MB of float32). A view with stride 0 repeats elements (PyTorch `expand`), so a
 * 0.5 KB file holding one float could otherwise materialise 1 GB per tensor. Ordinary state dicts
 * never need it (every tensor views at most its storage's elements).
 */
export const MAX_VIEW_EXCESS_ELEMENTS = 2 ** 24;

/**
 * Counts the elements views materialise beyond their storages and refuses, with a RangeError
 * naming the view and the limit, once the total passes `limit` ({@link MAX_VIEW_EXCESS_ELEMENTS}).
 */
export class ViewBudget {
  private excess = 0;
  constructor(readonly limit = MAX_VIEW_EXCESS_ELEMENTS) {}

  /** Accounts a view of `size`/`stride` over a storage of `storageElements`; throws past the limit. */
  take(size: readonly number[], stride: readonly number[], storageElements: number): void {
    const n = numel(size);
    if (n <= storageElements) return;
    this.excess += n - storageElements;
    if (this.excess > this.limit) {
      throw new RangeError(
        `view of size [${size.join(', ')}], stride [${stride.join(', ')}] materialises ${n} elements from a storage of ${storageElements}; ` +
          `the checkpoint's views would repeat ${this.excess} elements beyond their storages, more than the ${this.limit} allowed (a stride-0 expansion bomb?). ` +
          'Re-save the checkpoint with contiguous tensors (t.contiguous().clone() before torch.save)',
      );
    }
  }
}

/**
 * Gather a strided view (PyTorch `as_strided(size, stride, offset)`) of `storage` into a new
 * contiguous array. Throws a RangeError naming the bad index when the view reads past the
 * storage, so a corrupt file cannot read arbitrary memory of the typed array.
 */
export function gatherStrided(storage: TensorData, offset: number, size: readonly number[], stride: readonly number[]): TensorData {
  const n = numel(size);
  const rank = size.length;
  if (n === 0) return sliceOf(storage, 0, 0);
  // Largest (and smallest) flat index the view touches, to bounds-check once up front.
  let maxIdx = offset;
  let minIdx = offset;
  for (let d = 0; d < rank; d++) {
    const span = (size[d]! - 1) * stride[d]!;
    if (span > 0) maxIdx += span;
    else minIdx += span;
  }
  if (minIdx < 0 || maxIdx >= storage.length) {
    throw new RangeError(
      `view (offset ${offset}, size [${size.join(', ')}], stride [${stride.join(', ')}]) reads elements ${minIdx}..${maxIdx} of a storage of ${storage.length}`,
    );
  }
  let contiguous = true;
  let expect = 1;
  for (let d = rank - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= size[d]!;
  }
  if (contiguous) return sliceOf(storage, offset, offset + n);
  const out = makeLike(storage, n);
  const idx = new Array<number>(rank).fill(0);
  let src = offset;
  for (let i = 0; i < n; i++) {
    (out as Float32Array)[i] = (storage as Float32Array)[src]!;
    // Odometer increment of the multi-index, updating the source position incrementally.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]!;
      if (idx[d]! < size[d]!) break;
      src -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function sliceOf(a: TensorData, start: number, end: number): TensorData {
  return a.slice(start, end) as TensorData;
}

function makeLike(a: TensorData, n: number): TensorData {
  const C = a.constructor as new (n: number) => TensorData;
  return new C(n);
}

/** Permute a contiguous row-major tensor: `out.shape[i] = shape[perm[i]]`. */
export function transposeData(data: TensorData, shape: readonly number[], perm: readonly number[]): { data: TensorData; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= shape[d]!;
  }
  return { data: gatherStrided(data, 0, outShape, perm.map((p) => inStrides[p]!)), shape: outShape };
}
