import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { ZooClassifier, ZooExtractor, checkZooWeightBytes, decodeZooWeights, type WeightsManifest } from './models.js';
import { HumanEmotion, HumanFaceres, type ZooGraphModel } from './human.js';
import { ZooWeightsError } from './nets.js';
import { TinyFaceDetector } from './detector.js';
import { FaceLandmarker } from './landmarks.js';
import { GRAPH_RUNTIME, ZOO, installCommand, zooEntry, zooEntryFor, type ZooEntry } from './registry.js';

/** The npm package that ships a zoo model (or, for a graph model, tfjs-converter that runs it) is not installed. */
export class ZooNotInstalledError extends DfdError {
  constructor(entry: ZooEntry, missing: { package: string; versionRange: string } = entry) {
    super('E_ZOO_NOT_INSTALLED', `zoo model '${entry.id}' needs the npm package ${missing.package} (${missing.versionRange}), which is not installed. Install it next to dfd: ${installCommand(entry)}`);
  }
}

const require = createRequire(import.meta.url);

/** Folder and version of the installed package behind `entry`, or null when it is not installed. */
export function findZooPackage(entry: ZooEntry, from?: string): { dir: string; version: string } | null {
  try {
    const req = from ? createRequire(join(resolve(from), 'noop.js')) : require;
    let pj: string | undefined;
    try {
      pj = req.resolve(`${entry.package}/package.json`);
    } catch {
      // Packages whose `exports` do not list ./package.json (Human): look in the node_modules folders Node would search.
      pj = (req.resolve.paths(entry.package) ?? []).map((d) => join(d, entry.package, 'package.json')).find((f) => existsSync(f));
    }
    if (!pj) return null;
    const { version } = require(pj) as { version: string };
    return { dir: dirname(pj), version };
  } catch {
    return null;
  }
}

type Converter = { loadGraphModelSync(source: [unknown, ArrayBuffer]): ZooGraphModel };

/** tfjs-converter (runs the graph-model entries), or null when it is not installed. */
async function graphRuntime(): Promise<Converter | null> {
  try {
    return (await import(GRAPH_RUNTIME.package)) as Converter;
  } catch {
    return null;
  }
}

/** A zoo entry with what this machine has of it. */
export interface ZooStatus extends ZooEntry {
  installed: boolean;
  /** Installed package version. */
  version?: string;
  /** Bytes of the weight shards. */
  bytes?: number;
}

async function shardPaths(entry: ZooEntry, dir: string): Promise<{ manifest: WeightsManifest; paths: string[]; model?: Record<string, unknown> }> {
  const manifestPath = join(dir, entry.manifest);
  let manifest: WeightsManifest;
  let model: Record<string, unknown> | undefined;
  try {
    const json = JSON.parse(await readFile(manifestPath, 'utf8')) as unknown;
    if (entry.format === 'graph-model') {
      model = json as Record<string, unknown>;
      if (model.format !== 'graph-model' || !model.modelTopology || !Array.isArray(model.weightsManifest)) throw new Error('not a tfjs graph model (format, modelTopology, weightsManifest)');
      manifest = model.weightsManifest as WeightsManifest;
    } else {
      manifest = json as WeightsManifest;
    }
  } catch (err) {
    throw new ZooWeightsError(`cannot read ${manifestPath} (${(err as Error).message}); reinstall with: ${installCommand(entry)}`);
  }
  const base = dirname(manifestPath);
  const paths = manifest.flatMap((g) => g.paths).map((p) => {
    const full = resolve(base, p);
    // Shards stay inside the package's model folder, whatever the manifest says.
    if (relative(base, full).startsWith('..') || relative(base, full).includes(`..${sep}`)) throw new ZooWeightsError(`${manifestPath}: shard path '${p}' leaves the model folder.`);
    return full;
  });
  return { manifest, paths, ...(model ? { model } : {}) };
}

/** Every zoo entry with installed / version / size on this machine (what `dfd models list` prints). */
export async function listZooModels(): Promise<ZooStatus[]> {
  const out: ZooStatus[] = [];
  for (const entry of ZOO) {
    const pkg = findZooPackage(entry);
    if (!pkg) {
      out.push({ ...entry, installed: false });
      continue;
    }
    let bytes = 0;
    try {
      const { paths } = await shardPaths(entry, pkg.dir);
      for (const p of paths) bytes += (await stat(p)).size;
      const runnable = entry.format !== 'graph-model' || findZooPackage({ ...entry, ...GRAPH_RUNTIME }) !== null;
      out.push({ ...entry, installed: runnable, version: pkg.version, bytes });
    } catch {
      out.push({ ...entry, installed: false, version: pkg.version });
    }
  }
  return out;
}

async function readShards(entry: ZooEntry): Promise<{ manifest: WeightsManifest; data: ArrayBuffer; model?: Record<string, unknown> }> {
  const pkg = findZooPackage(entry);
  if (!pkg) throw new ZooNotInstalledError(entry);
  const { manifest, paths, model } = await shardPaths(entry, pkg.dir);
  const shards = await Promise.all(paths.map((p) => readFile(p)));
  const total = shards.reduce((s, b) => s + b.byteLength, 0);
  const data = new Uint8Array(total);
  let at = 0;
  for (const b of shards) {
    data.set(b, at);
    at += b.byteLength;
  }
  return { manifest, data: data.buffer, ...(model ? { model } : {}) };
}

/** Reads and decodes the weights of a zoo model from its installed npm package (offline). */
export async function loadZooWeights(id: string): Promise<tf.NamedTensorMap> {
  const { manifest, data } = await readShards(zooEntry(id));
  return decodeZooWeights(manifest, data);
}

/** A graph-model zoo entry (Human's nets) as tfjs-converter's GraphModel, read from its installed package (offline). */
export async function loadZooGraphModel(id: string): Promise<ZooGraphModel> {
  const entry = zooEntry(id);
  if (entry.format !== 'graph-model') throw new ZooWeightsError(`zoo model '${id}' is not a graph model; load its weights with loadZooWeights.`);
  const { manifest, data, model } = await readShards(entry);
  const converter = await graphRuntime();
  if (!converter) throw new ZooNotInstalledError(entry, GRAPH_RUNTIME);
  // Same byte check as the weight manifests: a truncated shard fails here, not inside the converter.
  checkZooWeightBytes(manifest, data);
  return converter.loadGraphModelSync([model, data]);
}

/** A frozen zoo EIFE (`--eife faceapi:recognition`, `--eife human:faceres`), ready for the trainer. */
export async function loadZooExtractor(id: string): Promise<ZooExtractor | HumanFaceres> {
  const entry = zooEntryFor(id, 'eife');
  if (entry.format === 'graph-model') return new HumanFaceres(id, await loadZooGraphModel(id));
  return new ZooExtractor(id, await loadZooWeights(id));
}

/** A zoo expression classifier as it ships (`dfd eval --model faceapi:expression`, `--baseline human:emotion`). */
export async function loadZooClassifier(id: string): Promise<ZooClassifier | HumanEmotion> {
  const entry = zooEntryFor(id, 'classifier');
  if (entry.format === 'graph-model') return new HumanEmotion(id, await loadZooGraphModel(id));
  return new ZooClassifier(id, await loadZooWeights(id));
}

/** The zoo face detector (`dfd predict --detect`): `detect(image)` -> boxes in the image's pixels with scores. */
export async function loadZooDetector(id = 'faceapi:tiny-detector'): Promise<TinyFaceDetector> {
  zooEntryFor(id, 'detector');
  return new TinyFaceDetector(await loadZooWeights(id));
}

/** The zoo landmark net (eye levelling in `dfd predict --detect`): `landmarks(image, box)` -> 68 points in the image's pixels. */
export async function loadZooLandmarker(id = 'faceapi:landmarks-tiny'): Promise<FaceLandmarker> {
  zooEntryFor(id, 'landmarks');
  return new FaceLandmarker(await loadZooWeights(id));
}
