import { Unzip, UnzipInflate } from 'fflate';
import { CheckpointFormatError } from './errors.js';
import { PyGlobal, PyTuple, typeName, unpickle, type GlobalBuilder } from './pickle.js';
import { DTYPE_BYTES, ViewBudget, decodeElements, gatherStrided, importedDtype, type SourceDtype, type StateDict, type TensorData, type TensorEntry } from './tensor.js';
import { unwrapStateDict, type UnwrapOptions } from './unwrap.js';

/** Which torch storage class holds which element type. */
const STORAGE_DTYPES: Record<string, SourceDtype> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** Largest tensor the importer materialises (2^28 elements = 1 GiB of float32; ResNet-18 needs 2.4M at most). */
export const MAX_TENSOR_ELEMENTS = 2 ** 28;

/** A reference to one storage record of the archive (`<prefix>/data/<key>`). */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: SourceDtype,
    readonly location: string,
    readonly numel: number,
  ) {}
}

/** A tensor as the checkpoint describes it: a strided view of a storage, not yet materialised. */
export class TorchTensor {
  /** State set by a BUILD opcode (tensor subclasses); kept, never interpreted. */
  buildState: unknown = undefined;
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {}
}

function intList(v: unknown, what: string, file: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw new CheckpointFormatError(file, `tensor ${what} is not a tuple of integers (${typeName(v)})`);
  }
  return v as number[];
}

function rebuildTensor(args: unknown[], file: string): TorchTensor {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof StorageRef)) throw new CheckpointFormatError(file, `tensor rebuild without a storage (${typeName(storage)})`);
  if (typeof offset !== 'number') throw new CheckpointFormatError(file, 'tensor storage offset is not an integer');
  const sz = intList(size, 'size', file);
  const st = intList(stride, 'stride', file);
  if (sz.length !== st.length) throw new CheckpointFormatError(file, `tensor size [${sz}] and stride [${st}] differ in rank`);
  if (sz.some((d) => d < 0) || st.some((d) => d < 0)) throw new CheckpointFormatError(file, `negative tensor size or stride (size [${sz}], stride [${st}])`);
  // A crafted size (e.g. stride-0 broadcast of one element) must not make us allocate gigabytes.
  if (sz.reduce((a, b) => a * b, 1) > MAX_TENSOR_ELEMENTS) {
    throw new CheckpointFormatError(file, `tensor of size [${sz}] has more than ${MAX_TENSOR_ELEMENTS} elements`);
  }
  return new TorchTensor(storage, offset, sz, st, requiresGrad === true);
}

function rebuildParameter(args: unknown[], file: string): TorchTensor {
  const t = args[0];
  if (!(t instanceof TorchTensor)) throw new CheckpointFormatError(file, `parameter rebuild without a tensor (${typeName(t)})`);
  return t;
}

function pairsToMap(items: unknown, file: string): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  if (items instanceof Map) return new Map(items);
  if (items === undefined) return m;
  if (!Array.isArray(items)) throw new CheckpointFormatError(file, `dict() of a ${typeName(items)}`);
  for (const kv of items) {
    if (!Array.isArray(kv) || kv.length !== 2) throw new CheckpointFormatError(file, 'dict() item is not a pair');
    m.set(kv[0], kv[1]);
  }
  return m;
}

/**
 * The allow-list: everything a `torch.save(state_dict)` (or a dict wrapping one) may reference.
 * `null` entries may appear as values (storage types) but cannot be called.
 */
export const TORCH_ALLOWED_GLOBALS: ReadonlyMap<string, GlobalBuilder | null> = new Map<string, GlobalBuilder | null>([
  ['collections.OrderedDict', (args, file) => pairsToMap(args[0], file)],
  ['builtins.dict', (args, file) => pairsToMap(args[0], file)],
  ['builtins.set', (args) => new Set(Array.isArray(args[0]) ? args[0] : [])],
  ['builtins.frozenset', (args) => new Set(Array.isArray(args[0]) ? args[0] : [])],
  ['builtins.list', (args) => (Array.isArray(args[0]) ? [...args[0]] : [])],
  ['builtins.tuple', (args) => PyTuple.from(Array.isArray(args[0]) ? args[0] : []) as PyTuple],
  ['torch.Size', (args) => PyTuple.from(Array.isArray(args[0]) ? args[0] : []) as PyTuple],
  // Protocol 2 pickles bytes as _codecs.encode(latin1_text, 'latin1'): rebuilt here, nothing called.
  [
    '_codecs.encode',
    (args, file) => {
      const [s, enc] = args;
      if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new CheckpointFormatError(file, '_codecs.encode other than latin1 text');
      return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
    },
  ],
  ['torch._utils._rebuild_tensor', rebuildTensor],
  ['torch._utils._rebuild_tensor_v2', rebuildTensor],
  ['torch._utils._rebuild_parameter', rebuildParameter],
  ['torch._utils._rebuild_parameter_with_state', rebuildParameter],
  ...Object.keys(STORAGE_DTYPES).map((n): [string, null] => [`torch.${n}`, null]),
]);

/** Options of `parseTorchCheckpoint`. */
export interface TorchParseOptions extends UnwrapOptions {
  /** Name for error messages (the file name); default `checkpoint.pth`. */
  name?: string;
}

/** The archive read and unpickled, before the state dict is picked out of it. */
export interface TorchArchive {
  /** The unpickled root object: Map (dict), arrays, numbers, strings, `TorchTensor`s... */
  root: unknown;
  /** Materialise one tensor (contiguous, floats as float32). */
  materialise(t: TorchTensor): TensorEntry;
}

/** Largest `data.pkl` accepted (inflated): the pickle of a state dict is a few hundred KB. */
export const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
/** Largest ratio of inflated to compressed size accepted for a deflated entry (deflate's own limit is about 1032). */
export const MAX_DEFLATE_RATIO = 1100;

/**
 * Streams the zip (64 KB at a time) and inflates only the entries `select` asks for, each up to
 * the byte limit it returns: an entry is refused before inflating when its declared size is above
 * the limit or its declared ratio is implausible, and while inflating as soon as its output passes
 * the limit (a size in the header that lies). Entries not selected are skipped, never inflated.
 */
function extractEntries(bytes: Uint8Array, name: string, select: (entry: string) => number | null): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const seen: string[] = [];
  let failure: Error | null = null;
  const fail = (e: Error) => void (failure ??= e);
  const unzip = new Unzip((file) => {
    seen.push(file.name);
    const limit = select(file.name);
    if (limit === null || failure) return;
    const declared = file.originalSize;
    if (declared !== undefined && declared > limit) {
      fail(new CheckpointFormatError(name, `zip entry '${file.name}' declares ${declared} bytes, more than the ${limit} it can hold; refusing to inflate it`));
      return;
    }
    if (file.compression !== 0 && declared !== undefined && file.size !== undefined && declared > MAX_DEFLATE_RATIO * Math.max(1, file.size)) {
      fail(new CheckpointFormatError(name, `zip entry '${file.name}' declares ${declared} bytes from ${file.size} compressed (ratio above ${MAX_DEFLATE_RATIO}); refusing a decompression bomb`));
      return;
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    file.ondata = (err, chunk, final) => {
      if (failure) return;
      if (err) return fail(err);
      n += chunk.length;
      if (n > limit) {
        file.terminate();
        return fail(new CheckpointFormatError(name, `zip entry '${file.name}' inflates to more than ${limit} bytes${declared !== undefined ? ` (it declares ${declared})` : ''}; refusing a decompression bomb`));
      }
      chunks.push(chunk);
      if (final) {
        const all = new Uint8Array(n);
        let o = 0;
        for (const c of chunks) {
          all.set(c, o);
          o += c.length;
        }
        out.set(file.name, all);
      }
    };
    try {
      file.start();
    } catch (e) {
      fail(e as Error);
    }
  });
  unzip.register(UnzipInflate);
  const STEP = 65536;
  try {
    for (let i = 0; i < bytes.length && !failure; i += STEP) unzip.push(bytes.subarray(i, Math.min(bytes.length, i + STEP)), i + STEP >= bytes.length);
  } catch (e) {
    fail(e as Error);
  }
  // Set from the callbacks above (TypeScript does not follow that).
  const failed = failure as Error | null;
  if (failed) throw failed instanceof CheckpointFormatError ? failed : new CheckpointFormatError(name, `corrupt zip archive: ${failed.message}`);
  Object.defineProperty(out, 'names', { value: seen });
  return out;
}

/** Read a `torch.save` zip archive with the restricted unpickler; tensors stay lazy. */
export function readTorchArchive(bytes: Uint8Array, name = 'checkpoint.pth'): TorchArchive {
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
    throw new CheckpointFormatError(
      name,
      'this is the legacy (non-zip) torch.save format of PyTorch < 1.6, which is not supported: re-save it with a current PyTorch (torch.save(torch.load(path), path2)) or as .safetensors',
    );
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    throw new CheckpointFormatError(name, 'not a zip archive (a torch.save file starts with "PK"); for .safetensors use parseSafetensors');
  }
  // Pass 1: only the pickle and the byte order are inflated; storages wait until the pickle names them.
  const isPickle = (f: string) => /^[^/]+\/data\.pkl$/.test(f) || f === 'data.pkl';
  const meta = extractEntries(bytes, name, (f) => (isPickle(f) || /^([^/]+\/)?byteorder$/.test(f) ? MAX_PICKLE_BYTES : null));
  const entryNames = (meta as unknown as { names: string[] }).names;
  const pkl = entryNames.filter(isPickle);
  if (pkl.length !== 1) {
    const isScript = entryNames.some((f) => f.endsWith('/constants.pkl'));
    throw new CheckpointFormatError(
      name,
      isScript
        ? 'this is a TorchScript archive (torch.jit.save); save the weights instead: torch.save(model.state_dict(), path)'
        : `expected exactly one <archive>/data.pkl in the zip, found ${pkl.length} (entries: ${entryNames.slice(0, 8).join(', ')})`,
    );
  }
  const prefix = pkl[0]!.slice(0, -'data.pkl'.length);
  const order = meta.get(`${prefix}byteorder`);
  const littleEndian = order === undefined || new TextDecoder().decode(order).trim() !== 'big';
  const storages = new Map<string, TensorData>();
  // Byte size of every storage the pickle references (from its persistent ids): the most its entry may inflate to.
  const referenced = new Map<string, number>();

  const persistentLoad = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
      throw new CheckpointFormatError(name, `unsupported persistent id (${typeName(pid)} ${Array.isArray(pid) ? String(pid[0]) : ''})`);
    }
    const [, type, key, location, count] = pid as unknown[];
    if (!(type instanceof PyGlobal) || !(type.name in STORAGE_DTYPES) || type.module !== 'torch') {
      throw new CheckpointFormatError(name, `unsupported storage type ${typeName(type)}`);
    }
    if (typeof key !== 'string' || typeof count !== 'number') throw new CheckpointFormatError(name, 'malformed storage reference');
    const ref = new StorageRef(key, STORAGE_DTYPES[type.name]!, String(location), count);
    const need = count * DTYPE_BYTES[ref.dtype];
    if (!Number.isSafeInteger(need) || need < 0 || need > 2 ** 31) throw new CheckpointFormatError(name, `storage '${key}' declares ${count} elements, beyond what a tensor here can hold`);
    referenced.set(`${prefix}data/${key}`, Math.max(referenced.get(`${prefix}data/${key}`) ?? 0, need));
    return ref;
  };

  const root = unpickle(meta.get(pkl[0]!)!, { file: name, globals: TORCH_ALLOWED_GLOBALS, persistentLoad });
  // Pass 2: the referenced storages, each up to the bytes its reference declares; nothing else is inflated.
  let files: Map<string, Uint8Array> | null = null;
  const storageBytes = (entry: string): Uint8Array | undefined => {
    files ??= extractEntries(bytes, name, (f) => referenced.get(f) ?? null);
    return files.get(entry);
  };

  const storageData = (ref: StorageRef): TensorData => {
    const cacheKey = `${ref.key}:${ref.dtype}`;
    const hit = storages.get(cacheKey);
    if (hit) return hit;
    const raw = storageBytes(`${prefix}data/${ref.key}`);
    if (!raw) throw new CheckpointFormatError(name, `storage record '${prefix}data/${ref.key}' is missing from the zip`);
    const width = DTYPE_BYTES[ref.dtype];
    if (raw.length % width !== 0 || raw.length / width < ref.numel) {
      throw new CheckpointFormatError(name, `storage '${ref.key}' has ${raw.length} bytes, expected ${ref.numel} x ${width} (${ref.dtype})`);
    }
    const decoded = decodeElements(raw, 0, raw.length / width, ref.dtype, littleEndian);
    storages.set(cacheKey, decoded);
    return decoded;
  };

  const budget = new ViewBudget();
  return {
    root,
    materialise(t: TorchTensor): TensorEntry {
      const storage = storageData(t.storage);
      let data: TensorData;
      try {
        budget.take(t.size, t.stride, storage.length);
        data = gatherStrided(storage, t.offset, t.size, t.stride);
      } catch (e) {
        throw new CheckpointFormatError(name, `tensor on storage '${t.storage.key}': ${(e as Error).message}`);
      }
      return { shape: [...t.size], dtype: importedDtype(t.storage.dtype), sourceDtype: t.storage.dtype, data };
    },
  };
}

/**
 * Parse a `torch.save` checkpoint (zip format, PyTorch >= 1.6) into a flat state dict. Wrappers
 * such as `{'state_dict': ...}` / `{'model': ...}` and DataParallel `module.` prefixes are
 * removed (see `unwrapStateDict`). Never executes anything from the file.
 */
export function parseTorchCheckpoint(bytes: Uint8Array, opts: TorchParseOptions = {}): StateDict {
  const name = opts.name ?? 'checkpoint.pth';
  const archive = readTorchArchive(bytes, name);
  return unwrapStateDict(
    archive.root,
    { ...opts, name },
    (v) => v instanceof TorchTensor,
    (v) => archive.materialise(v as TorchTensor),
  ).stateDict;
}

