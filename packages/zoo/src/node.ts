import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { ZooClassifier, ZooExtractor, decodeZooWeights, type WeightsManifest } from './models.js';
import { ZooWeightsError } from './nets.js';
import { TinyFaceDetector } from './detector.js';
import { FaceLandmarker } from './landmarks.js';
import { ZOO, installCommand, zooEntry, zooEntryFor, type ZooEntry } from './registry.js';

/** The npm package that ships a zoo model is not installed. */
export class ZooNotInstalledError extends DfdError {
  constructor(entry: ZooEntry) {
    super('E_ZOO_NOT_INSTALLED', `zoo model '${entry.id}' needs the npm package ${entry.package} (${entry.versionRange}), which is not installed. Install it next to dfd: ${installCommand(entry)}`);
  }
}

const require = createRequire(import.meta.url);

/** Folder and version of the installed package behind `entry`, or null when it is not installed. */
export function findZooPackage(entry: ZooEntry, from?: string): { dir: string; version: string } | null {
  try {
    const req = from ? createRequire(join(resolve(from), 'noop.js')) : require;
    const pj = req.resolve(`${entry.package}/package.json`);
    const { version } = require(pj) as { version: string };
    return { dir: dirname(pj), version };
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

async function shardPaths(entry: ZooEntry, dir: string): Promise<{ manifest: WeightsManifest; paths: string[] }> {
  const manifestPath = join(dir, entry.manifest);
  let manifest: WeightsManifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as WeightsManifest;
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
  return { manifest, paths };
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
      out.push({ ...entry, installed: true, version: pkg.version, bytes });
    } catch {
      out.push({ ...entry, installed: false, version: pkg.version });
    }
  }
  return out;
}

/** Reads and decodes the weights of a zoo model from its installed npm package (offline). */
export async function loadZooWeights(id: string): Promise<tf.NamedTensorMap> {
  const entry = zooEntry(id);
  const pkg = findZooPackage(entry);
  if (!pkg) throw new ZooNotInstalledError(entry);
  const { manifest, paths } = await shardPaths(entry, pkg.dir);
  const shards = await Promise.all(paths.map((p) => readFile(p)));
  const total = shards.reduce((s, b) => s + b.byteLength, 0);
  const data = new Uint8Array(total);
  let at = 0;
  for (const b of shards) {
    data.set(b, at);
    at += b.byteLength;
  }
  return decodeZooWeights(manifest, data.buffer);
}

/** A frozen zoo EIFE (`--eife faceapi:recognition`), ready for the trainer. */
export async function loadZooExtractor(id: string): Promise<ZooExtractor> {
  zooEntryFor(id, 'eife');
  return new ZooExtractor(id, await loadZooWeights(id));
}

/** A zoo expression classifier as it ships (`dfd eval --model faceapi:expression`, `--baseline`). */
export async function loadZooClassifier(id: string): Promise<ZooClassifier> {
  zooEntryFor(id, 'classifier');
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
