import { CheckpointFormatError } from './errors.js';
import { DTYPE_BYTES, decodeElements, importedDtype, numel, type SourceDtype, type StateDict, type TensorEntry } from './tensor.js';
import { unwrapStateDict } from './unwrap.js';

const SAFETENSORS_DTYPES: Record<string, SourceDtype> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

/** Options of `parseSafetensors`. */
export interface SafetensorsParseOptions {
  /** Name for error messages (the file name); default `checkpoint.safetensors`. */
  name?: string;
  /** Remove a `module.` / `_orig_mod.` prefix shared by every key (default true). */
  stripWrapperPrefixes?: boolean;
}

/** Parse a `.safetensors` file (8-byte LE header length, JSON header, raw little-endian data). */
export function parseSafetensors(bytes: Uint8Array, opts: SafetensorsParseOptions = {}): StateDict {
  const name = opts.name ?? 'checkpoint.safetensors';
  if (bytes.length < 8) throw new CheckpointFormatError(name, `file is ${bytes.length} bytes, shorter than the 8-byte safetensors header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(bytes.length - 8)) {
    throw new CheckpointFormatError(name, `header length ${headerLen} exceeds the file (${bytes.length} bytes): not a safetensors file, or truncated`);
  }
  const dataStart = 8 + Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw new CheckpointFormatError(name, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new CheckpointFormatError(name, 'header is not a JSON object');
  const dataLen = bytes.length - dataStart;
  const sd: StateDict = new Map();
  for (const [key, info] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') continue;
    const where = `tensor '${key}'`;
    if (info === null || typeof info !== 'object') throw new CheckpointFormatError(name, `${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const src = typeof dtype === 'string' ? SAFETENSORS_DTYPES[dtype] : undefined;
    if (!src) throw new CheckpointFormatError(name, `${where}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new CheckpointFormatError(name, `${where}: shape is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      throw new CheckpointFormatError(name, `${where}: data_offsets is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const n = numel(shape as number[]);
    if (end < begin || end > dataLen) throw new CheckpointFormatError(name, `${where}: data_offsets [${begin}, ${end}] lie outside the ${dataLen} data bytes`);
    if (end - begin !== n * DTYPE_BYTES[src]) {
      throw new CheckpointFormatError(name, `${where}: ${end - begin} bytes for shape [${shape.join(', ')}] of ${dtype} (expected ${n * DTYPE_BYTES[src]})`);
    }
    const entry: TensorEntry = { shape: [...(shape as number[])], dtype: importedDtype(src), sourceDtype: src, data: decodeElements(bytes, dataStart + begin, n, src) };
    sd.set(key, entry);
  }
  if (sd.size === 0) return sd;
  return unwrapStateDict(sd, { name, stripWrapperPrefixes: opts.stripWrapperPrefixes }, () => true, (v) => v as TensorEntry).stateDict;
}
