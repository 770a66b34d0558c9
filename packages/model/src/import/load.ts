import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { CheckpointMismatchError, type ShapeMismatch } from './errors.js';
import { transposeData, type StateDict, type TensorData, type TensorEntry } from './tensor.js';

/** Anything with PyTorch-named variables: every `Module` of @dfd/backbone (DfdNet, Eife, backbones). */
export interface StateDictTarget {
  namedParameters(): Array<[string, tf.Variable]>;
  namedBuffers(): Array<[string, tf.Variable]>;
}

/** Prefix rewrite rules, applied in order, first match wins: `{'backbone.': 'efe.'}`; `''` as `from` prefixes every key. */
export type PrefixMap = Record<string, string> | ReadonlyArray<readonly [string, string]>;

/** Options of `loadStateDictInto`. */
export interface LoadStateDictOptions {
  /** Rename checkpoint keys before matching (e.g. a backbone saved as `backbone.*` -> `efe.*`). */
  prefixMap?: PrefixMap;
  /** Default true: any missing or unexpected key is an error. Wrong shapes are always an error. */
  strict?: boolean;
  /** Load only the model's `efe.*` state (the EFE backbone); other checkpoint keys are ignored. */
  backboneOnly?: boolean;
  /** Checkpoint name for messages. */
  name?: string;
}

/** What `loadStateDictInto` did, by model (post-mapping) key. */
export interface LoadStateDictResult {
  /** Model keys assigned from the checkpoint. */
  loaded: string[];
  /** Checkpoint keys deliberately skipped (`num_batches_tracked`, non-backbone keys with `backboneOnly`). */
  ignored: string[];
  /** Model keys left as initialised (only when `strict` is false). */
  missing: string[];
  /** Checkpoint keys with no model counterpart (only when `strict` is false). */
  unexpected: string[];
}

/** Two checkpoint keys map to the same model key after prefix mapping. */
export class PrefixMapError extends DfdError {
  constructor(message: string) {
    super('E_PREFIX_MAP', message);
  }
}

/** Parse CLI-style `old=new` rules (`=efe.` adds a prefix, `module.=` removes one). */
export function parsePrefixMap(rules: readonly string[]): Array<[string, string]> {
  return rules.map((r) => {
    const i = r.indexOf('=');
    if (i < 0) throw new PrefixMapError(`prefix map rule '${r}' has no '=': write it as old=new, e.g. backbone.=efe.`);
    return [r.slice(0, i), r.slice(i + 1)];
  });
}

/** Apply prefix rules to every key; throws if two keys collide. */
export function remapKeys(sd: StateDict, prefixMap: PrefixMap | undefined): StateDict {
  if (!prefixMap) return sd;
  const rules = Array.isArray(prefixMap) ? (prefixMap as ReadonlyArray<readonly [string, string]>) : Object.entries(prefixMap);
  if (rules.length === 0) return sd;
  const out: StateDict = new Map();
  const origin = new Map<string, string>();
  for (const [k, v] of sd) {
    const rule = rules.find(([from]) => k.startsWith(from));
    const nk = rule ? rule[1] + k.slice(rule[0].length) : k;
    const prev = origin.get(nk);
    if (prev !== undefined) throw new PrefixMapError(`prefix map sends both '${prev}' and '${k}' to '${nk}'`);
    origin.set(nk, k);
    out.set(nk, v);
  }
  return out;
}

/** The permutation PyTorch layout -> tfjs layout for a tensor of this rank (API.md rule). */
export function torchToTfjsPerm(rank: number): number[] | null {
  if (rank === 4) return [2, 3, 1, 0]; // OIHW -> HWIO
  if (rank === 2) return [1, 0]; // Linear [out, in] -> [in, out]
  return null;
}

/** A tensor in PyTorch layout rearranged into the tfjs layout the model's variables use. */
export function toTfjsLayout(entry: TensorEntry): TensorEntry {
  const perm = torchToTfjsPerm(entry.shape.length);
  if (!perm) return entry;
  const t = transposeData(entry.data, entry.shape, perm);
  return { ...entry, shape: t.shape, data: t.data };
}

function tfjsShapeToTorch(shape: readonly number[]): number[] {
  const perm = torchToTfjsPerm(shape.length);
  if (!perm) return [...shape];
  const out = new Array<number>(shape.length);
  perm.forEach((p, i) => (out[p] = shape[i]!));
  return out;
}

function toFloat32(data: TensorData): Float32Array {
  if (data instanceof Float32Array) return data;
  return Float32Array.from(data as ArrayLike<number | bigint>, (v) => Number(v));
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Load a PyTorch state dict into a model's variables. Checks every name and shape first and
 * throws `CheckpointMismatchError` listing all missing, unexpected and mis-shaped keys; only when
 * everything matches is anything assigned (so a failed load leaves the model untouched).
 */
export function loadStateDictInto(model: StateDictTarget, sd: StateDict, opts: LoadStateDictOptions = {}): LoadStateDictResult {
  const strict = opts.strict ?? true;
  const mapped = remapKeys(sd, opts.prefixMap);
  const inScope = (k: string): boolean => !opts.backboneOnly || k.startsWith('efe.');
  const targets = new Map<string, tf.Variable>([...model.namedParameters(), ...model.namedBuffers()].filter(([k]) => inScope(k)));
  const ignored: string[] = [];
  const unexpected: string[] = [];
  const mismatched: ShapeMismatch[] = [];
  const plan: Array<[tf.Variable, TensorEntry]> = [];
  const loaded: string[] = [];
  for (const [key, entry] of mapped) {
    const v = targets.get(key);
    if (!v) {
      if (key.endsWith('.num_batches_tracked') || !inScope(key)) ignored.push(key);
      else unexpected.push(key);
      continue;
    }
    const expectedTorch = tfjsShapeToTorch(v.shape);
    // Scalars saved as [1] (or the reverse) are the same thing: PReLU's single slope.
    if (!sameShape(entry.shape, expectedTorch) && !(entry.data.length === 1 && v.size === 1)) {
      mismatched.push({ key, expected: expectedTorch, got: [...entry.shape] });
      continue;
    }
    plan.push([v, entry]);
    loaded.push(key);
  }
  const missing = [...targets.keys()].filter((k) => !mapped.has(k));
  if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
    throw new CheckpointMismatchError(`checkpoint '${opts.name ?? 'state dict'}'`, strict ? missing : [], strict ? unexpected : [], mismatched);
  }
  for (const [v, entry] of plan) {
    const t = toTfjsLayout(entry);
    const value = tf.tensor(toFloat32(t.data), v.shape, 'float32');
    v.assign(value);
    value.dispose();
  }
  return { loaded, ignored, missing, unexpected };
}

/** A model's state as a PyTorch-layout state dict (e.g. to compare with, or write, a checkpoint). */
export async function stateDictOf(model: StateDictTarget): Promise<StateDict> {
  const sd: StateDict = new Map();
  for (const [k, v] of [...model.namedParameters(), ...model.namedBuffers()]) {
    const data = (await v.data()) as Float32Array;
    const perm = torchToTfjsPerm(v.shape.length);
    // Invert the tfjs permutation to get back PyTorch's layout.
    const inv = perm ? perm.map((_, i) => perm.indexOf(i)) : null;
    const t = inv ? transposeData(data, v.shape, inv) : { data, shape: [...v.shape] };
    sd.set(k, { shape: t.shape, dtype: 'float32', sourceDtype: 'float32', data: t.data });
  }
  return sd;
}
