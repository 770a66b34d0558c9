import * as tf from '@tensorflow/tfjs-core';
import { EXPRESSIONS } from '@dfd/core';
import type { Module } from '@dfd/backbone';
import { Eife, type EifeConfig } from '@dfd/mip';
import { DfdNet, resolveDfdNetConfig, type DfdNetConfig } from './dfdnet.js';
import { ModelFormatError, NonFiniteWeightsError } from './errors.js';
import { BackboneModel, eifeFromConfig, type BackboneModelConfig } from './others.js';

/** Any model this package builds and saves. */
export type DfdModel = DfdNet | Eife | BackboneModel;

/** The `kind` field of model.json. */
export type ModelKind = 'dfd-net' | 'eife' | 'backbone';

/** One entry of a tfjs weights manifest. */
export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/** model.json: dfd metadata plus a standard tfjs weights manifest (tf.io tooling can read it). */
export interface ModelJson {
  format: 'dfd-model';
  formatVersion: 1;
  kind: ModelKind;
  config: DfdNetConfig | EifeConfig | BackboneModelConfig;
  /** Class names of the output: expressions for dfd-net, factor names for eife, empty for backbone. */
  labels: string[];
  weightsManifest: Array<{ paths: string[]; weights: WeightEntry[] }>;
  /** How inputs are framed ({@link setModelFraming}); absent = resize. */
  framing?: Record<string, unknown>;
}

/**
 * How the model's inputs are framed (`@dfd/zoo`'s Framing: `{ kind: 'resize' | 'centre-crop' |
 * 'align', ... }`), recorded in model.json's optional `framing` field. Absent = `resize`.
 */
const FRAMINGS = new WeakMap<object, Record<string, unknown>>();

/** Records `framing` on `model` (written as model.json's `framing`); `undefined` clears it. */
export function setModelFraming(model: DfdModel, framing: Record<string, unknown> | undefined): void {
  if (framing) FRAMINGS.set(model, JSON.parse(JSON.stringify(framing)) as Record<string, unknown>);
  else FRAMINGS.delete(model);
}

/** The framing recorded on `model` (loaded from model.json or set with {@link setModelFraming}). */
export function modelFraming(model: DfdModel): Record<string, unknown> | undefined {
  return FRAMINGS.get(model);
}

/** A model as two artifacts: model.json and one weights.bin. */
export interface ModelArtifacts {
  modelJson: ModelJson;
  weights: ArrayBuffer;
}

/** Which kind of model this is (model.json `kind`). */
export function modelKind(model: DfdModel): ModelKind {
  if (model instanceof DfdNet) return 'dfd-net';
  if (model instanceof Eife) return 'eife';
  if (model instanceof BackboneModel) return 'backbone';
  throw new ModelFormatError('modelToArtifacts', 'not a model built by @dfd/model (createDfdNet, createEife or createBackboneModel)');
}

function defaultLabels(model: DfdModel): string[] {
  if (model instanceof DfdNet) {
    return model.config.numClasses === EXPRESSIONS.length ? [...EXPRESSIONS] : Array.from({ length: model.config.numClasses }, (_, i) => `class${i}`);
  }
  if (model instanceof Eife) return model.factors.map((f) => f.name);
  return [];
}

/** Names of the `[name, values]` entries holding NaN or infinite values, and how many such values there are. */
export function findNonFinite(entries: Iterable<readonly [string, ArrayLike<number>]>): { names: string[]; count: number } {
  const names: string[] = [];
  let count = 0;
  for (const [name, data] of entries) {
    let bad = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) bad++;
    if (bad) {
      names.push(name);
      count += bad;
    }
  }
  return { names, count };
}

/**
 * Serialises parameters and BN running statistics (canonical names, tfjs layouts, float32
 * little-endian). A model holding NaN or infinite values is refused ({@link NonFiniteWeightsError}).
 */
export async function modelToArtifacts(model: DfdModel, options: { labels?: string[]; /** Named in errors (default: the kind). */ source?: string } = {}): Promise<ModelArtifacts> {
  const kind = modelKind(model);
  const state = (model as Module).namedState();
  const total = state.reduce((s, [, v]) => s + v.size, 0);
  const buf = new Float32Array(total);
  const weights: WeightEntry[] = [];
  const offsets = [0];
  let off = 0;
  for (const [name, v] of state) {
    const data = (await v.data()) as Float32Array;
    buf.set(data, off);
    off += data.length;
    offsets.push(off);
    weights.push({ name, shape: [...v.shape], dtype: 'float32' });
  }
  const bad = findNonFinite(weights.map((w, i) => [w.name, buf.subarray(offsets[i]!, offsets[i + 1]!)] as const));
  if (bad.count) throw new NonFiniteWeightsError(options.source ?? kind, bad.names, bad.count, 'the model was not written (training diverged: lower the learning rate, or use an earlier checkpoint)');
  // Float32Array is little-endian on every platform tfjs runs on; tfjs weights are too.
  const modelJson: ModelJson = {
    format: 'dfd-model',
    formatVersion: 1,
    kind,
    config: JSON.parse(JSON.stringify(model.config)) as ModelJson['config'],
    labels: options.labels ?? defaultLabels(model),
    weightsManifest: [{ paths: ['weights.bin'], weights }],
  };
  const framing = FRAMINGS.get(model);
  if (framing) modelJson.framing = framing;
  return { modelJson, weights: buf.buffer };
}

/** Builds an untrained model of a kind from its config (the architecture half of model.json). */
export function createModelFromConfig(kind: ModelKind, config: unknown, source = 'model.json'): DfdModel {
  if (config === null || typeof config !== 'object') throw new ModelFormatError(source, `'config' must be an object, got ${JSON.stringify(config)}`);
  try {
    if (kind === 'dfd-net') return new DfdNet(resolveDfdNetConfig(config as DfdNetConfig));
    if (kind === 'eife') return eifeFromConfig(config as EifeConfig);
    if (kind === 'backbone') {
      const c = config as Partial<BackboneModelConfig>;
      return new BackboneModel({ width: c.width ?? 1, inputSize: c.inputSize ?? 90, layout: c.layout ?? 'ddl', seed: c.seed ?? 0 });
    }
  } catch (err) {
    throw new ModelFormatError(source, `invalid config for kind '${kind}': ${(err as Error).message}`);
  }
  throw new ModelFormatError(source, `unknown kind ${JSON.stringify(kind)}; expected 'dfd-net', 'eife' or 'backbone'`);
}

function checkModelJson(json: unknown, source: string): ModelJson {
  const j = json as Partial<ModelJson> | null;
  if (j === null || typeof j !== 'object') throw new ModelFormatError(source, 'model.json must be a JSON object');
  if (j.format !== 'dfd-model') throw new ModelFormatError(source, `'format' must be 'dfd-model', got ${JSON.stringify(j.format)}; is this a dfd model.json?`);
  if (j.formatVersion !== 1) throw new ModelFormatError(source, `'formatVersion' ${JSON.stringify(j.formatVersion)} is not supported (this version reads 1); upgrade @dfd/model`);
  if (!Array.isArray(j.weightsManifest) || j.weightsManifest.length === 0) throw new ModelFormatError(source, "'weightsManifest' must be a non-empty array");
  return j as ModelJson;
}

/**
 * Rebuilds a model from model.json and its weight buffers (one per manifest group path, in
 * order, or one buffer holding all of them concatenated). Every parameter and buffer of the
 * architecture must be present with the same shape; extra or missing names are an error.
 */
export function modelFromArtifacts(modelJson: unknown, weights: ArrayBuffer | ArrayBuffer[], source = 'artifacts'): DfdModel {
  const json = checkModelJson(modelJson, source);
  const entries = json.weightsManifest.flatMap((g) => g.weights);
  const parts = Array.isArray(weights) ? weights : [weights];
  const totalBytes = parts.reduce((s, b) => s + b.byteLength, 0);
  const all = new Uint8Array(totalBytes);
  let o = 0;
  for (const p of parts) {
    all.set(new Uint8Array(p), o);
    o += p.byteLength;
  }
  const expectedBytes = entries.reduce((s, e) => {
    if (e.dtype !== 'float32') throw new ModelFormatError(source, `weight '${e.name}' has dtype '${e.dtype}'; only float32 is supported`);
    return s + 4 * e.shape.reduce((a, b) => a * b, 1);
  }, 0);
  if (expectedBytes !== totalBytes) {
    throw new ModelFormatError(source, `weights hold ${totalBytes} bytes but the manifest describes ${expectedBytes}; the weights file is truncated or belongs to another model`);
  }
  const model = createModelFromConfig(json.kind, json.config, source);
  try {
    const state = new Map((model as Module).namedState());
    const names = new Map([...state].map(([n, v]) => [v, n] as const));
    const seen = new Set<string>();
    const unexpected: string[] = [];
    const mismatched: string[] = [];
    const floats = new Float32Array(all.buffer, all.byteOffset, totalBytes / 4);
    let off = 0;
    const assignments: Array<[tf.Variable, Float32Array]> = [];
    for (const e of entries) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      const v = state.get(e.name);
      if (!v) unexpected.push(e.name);
      else if (v.shape.join(',') !== e.shape.join(',')) mismatched.push(`${e.name} (model [${v.shape.join(', ')}], file [${e.shape.join(', ')}])`);
      else assignments.push([v, floats.subarray(off, off + n)]);
      seen.add(e.name);
      off += n;
    }
    const missing = [...state.keys()].filter((k) => !seen.has(k));
    if (unexpected.length || mismatched.length || missing.length) {
      const msg = [
        mismatched.length ? `wrong shape: ${mismatched.slice(0, 20).join(', ')}` : '',
        missing.length ? `missing: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ` (+${missing.length - 20})` : ''}` : '',
        unexpected.length ? `unexpected: ${unexpected.slice(0, 20).join(', ')}${unexpected.length > 20 ? ` (+${unexpected.length - 20})` : ''}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      throw new ModelFormatError(source, `weights do not match the '${json.kind}' architecture of its config: ${msg}`);
    }
    const bad = findNonFinite(assignments.map(([v, data]) => [names.get(v)!, data] as const));
    if (bad.count) throw new NonFiniteWeightsError(source, bad.names, bad.count, 'the model is unusable (saved by a run that diverged, or a corrupted file); retrain or use another model');
    for (const [v, data] of assignments) {
      const t = tf.tensor(data.slice(), v.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  const framing = (json as { framing?: unknown }).framing;
  if (framing !== undefined) {
    if (!framing || typeof framing !== 'object' || Array.isArray(framing) || typeof (framing as { kind?: unknown }).kind !== 'string') {
      model.dispose();
      throw new ModelFormatError(source, `'framing' must be an object with a 'kind' (resize, centre-crop or align), got ${JSON.stringify(framing)}`);
    }
    FRAMINGS.set(model, framing as Record<string, unknown>);
  }
  return model;
}

/** Loads model.json from `url` and its weight files (resolved relative to it) with fetch. Works in browsers and Node 18+. */
export async function loadModelFromUrl(url: string, options: { fetch?: typeof fetch } = {}): Promise<DfdModel> {
  const f = options.fetch ?? globalThis.fetch;
  const res = await f(url);
  if (!res.ok) throw new ModelFormatError(url, `HTTP ${res.status} fetching model.json`);
  const json = checkModelJson(await res.json(), url);
  const base = new URL(url, typeof location !== 'undefined' ? location.href : undefined);
  const folder = new URL('.', base).toString();
  const buffers: ArrayBuffer[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      // Weight files live beside model.json: no other origin, no '..', nothing above its folder.
      const wurl = typeof p === 'string' && !p.split(/[\\/]/).includes('..') ? new URL(p, base).toString() : '';
      if (!wurl.startsWith(folder)) throw new ModelFormatError(url, `weight path ${JSON.stringify(p)} must be a relative path beside model.json (no '..', no other host)`);
      const r = await f(wurl);
      if (!r.ok) throw new ModelFormatError(wurl, `HTTP ${r.status} fetching weights`);
      buffers.push(await r.arrayBuffer());
    }
  }
  return modelFromArtifacts(json, buffers, url);
}
