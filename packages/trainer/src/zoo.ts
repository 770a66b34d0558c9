import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, type EvaluationResult } from '@dfd/core';
import { compose, normalize, type DatasetRegistry, type FloatImage, type RgbImage, type Sample, type Transform } from '@dfd/datasets';
import type { DfdNet } from '@dfd/model';
import { resolve as resolvePath } from 'node:path';
import { assignFaceapiTrunk, isZooId, zooEntry, zooEntryFor, type Framing } from '@dfd/zoo';
import { loadZooClassifier, loadZooExtractor, loadZooWeights } from '@dfd/zoo/node';
import type { TrainConfig } from './config.js';
import { evaluate, meanAccuracy } from './evaluate.js';
import type { EifeLike } from './task.js';

/** How a zoo classifier's images are prepared: dfd's pipeline (as a trained model sees them) or its source library's own. */
export type ZooPreprocess = 'dfd' | 'native';

/**
 * The source library's own preprocessing of a zoo classifier's input, as a per-image transform
 * (ending in ImageNet normalisation, which the zoo classifier undoes): face-api (`faceapi:*`)
 * zero-pads the face to a centred square and resizes it with `tf.image.resizeBilinear` (no
 * antialiasing); Human (`human:*`) resizes the face with `tf.image.resizeBilinear` without padding.
 * dfd's default instead resizes the whole image, stretched, with an antialiased filter.
 */
export function nativeZooTransform(id: string): Transform {
  const size = zooEntry(id).inputSize;
  const pad = id.startsWith('faceapi:');
  const resize = (image: RgbImage | FloatImage): FloatImage => {
    const unit = image.data instanceof Float32Array ? 1 : 1 / 255;
    const out = tf.tidy(() => {
      let x = tf.mul(tf.tensor3d(Float32Array.from(image.data), [image.height, image.width, 3]), unit) as tf.Tensor3D;
      const { height: h, width: w } = image;
      if (pad && h !== w) {
        // face-api's padToSquare(isCenterImage): round(diff / 2) after, the rest before.
        const diff = Math.abs(h - w);
        const after = Math.round(diff * 0.5);
        const before = diff - after;
        x = tf.pad(x, h > w ? [[0, 0], [before, after], [0, 0]] : [[before, after], [0, 0], [0, 0]]);
      }
      return tf.image.resizeBilinear(x, [size, size], false, false);
    });
    const data = out.dataSync() as Float32Array;
    out.dispose();
    return { width: size, height: size, data: Float32Array.from(data) };
  };
  return compose(resize, normalize());
}

/** One zoo classifier evaluated next to the trained model (report.json `baselines`). */
export interface BaselineResult {
  id: string;
  results: EvaluationResult[];
  mean: number;
  sourceTest?: EvaluationResult;
}

/**
 * Fits `config.model` to a zoo backbone (in place, before the model is built): the entry's
 * layout (`faceapi`, `faceapi-xception`), and the net's own input size where the config has the
 * default 90. Idempotent, so a resumed run reads back the same shape from config.json.
 */
export function applyZooBackbone(config: TrainConfig): void {
  if (config.freezeBackbone && !config.backbone) throw new ConfigError('freezeBackbone', 'needs a pretrained --backbone (a zoo id such as faceapi:expression, or a model folder); freezing random weights trains nothing useful.');
  if (!config.backbone || !isZooId(config.backbone)) return;
  const entry = zooEntryFor(config.backbone, 'backbone');
  const layout = entry.layout!;
  if (config.model.layout !== 'ddl' && config.model.layout !== layout) {
    throw new ConfigError('model.layout', `backbone ${entry.id} has its own layout ('${layout}'); drop model.layout '${config.model.layout}'.`);
  }
  if (config.model.width !== 1) throw new ConfigError('model.width', `backbone ${entry.id} has fixed channels; width must be 1 (got ${config.model.width}).`);
  config.model.layout = layout;
  if (config.model.inputSize === 90) config.model.inputSize = entry.inputSize;
}

/** The stage-1 extractors of a run: `dfd train-eife` folders (via `loadFolder`) or frozen zoo nets. */
export async function loadExtractors(
  ids: string[],
  loadFolder: (dir: string) => Promise<EifeLike & { embedDim: number }>,
): Promise<Array<EifeLike & { embedDim: number }>> {
  const out: Array<EifeLike & { embedDim: number }> = [];
  try {
    for (const id of ids) out.push(isZooId(id) ? await loadZooExtractor(id) : await loadFolder(id));
  } catch (err) {
    for (const e of out) e.dispose();
    throw err;
  }
  return out;
}

/**
 * Puts a zoo backbone's pretrained weights into DFD-Net's `efe.*`; for the `base` variant on the
 * expression net, whose classifier reads the same global average pool as face-api's, its
 * expression classifier too (so `base` on a frozen `faceapi:expression` starts as face-api's
 * expression net). Returns tensors copied.
 */
export async function loadZooBackbone(model: DfdNet, id: string): Promise<number> {
  zooEntryFor(id, 'backbone');
  const weights: tf.NamedTensorMap = await loadZooWeights(id);
  try {
    return assignFaceapiTrunk(model, weights, 'efe.', model.config.variant === 'base' && zooEntry(id).roles.includes('classifier') ? 'classifier' : undefined);
  } finally {
    for (const t of Object.values(weights)) t.dispose();
  }
}

/**
 * Evaluates zoo classifiers as they ship on the run's targets and the source's test split, the
 * same way as the trained model (each at its own input size), for the report's baseline rows.
 */
export async function evaluateBaselines(
  ids: string[],
  targets: Array<{ name: string; spec: string }>,
  sourceTest: Sample[] | undefined,
  options: {
    batchSize: number;
    datasetRegistry: DatasetRegistry;
    /** Framing of the targets (as the trained model's). */
    framing?: Framing;
    /** `dfd` (default: dfd's resize and normalisation, as a trained model sees) or `native` ({@link nativeZooTransform}). */
    preprocess?: ZooPreprocess;
  },
): Promise<BaselineResult[]> {
  // run.ts imports this module; load it lazily so neither needs the other at import time.
  const { evaluateTargets, evalSource } = await import('./run.js');
  const out: BaselineResult[] = [];
  for (const id of ids) {
    const size = zooEntry(id).inputSize;
    const clf = await loadZooClassifier(id);
    try {
      const transform = options.preprocess === 'native' ? nativeZooTransform(id) : undefined;
      const results = await evaluateTargets(clf, targets, { inputSize: size, batchSize: options.batchSize, datasetRegistry: options.datasetRegistry, ...(options.framing ? { framing: options.framing } : {}), ...(transform ? { transform } : {}) });
      const st = sourceTest?.length ? await evaluate(clf, evalSource(sourceTest, size, options.batchSize, undefined, transform), 'source-test') : undefined;
      out.push({ id, results, mean: meanAccuracy(results), ...(st ? { sourceTest: st } : {}) });
    } finally {
      clf.dispose();
    }
  }
  return out;
}

/** `dfd eval --model faceapi:expression`: a zoo classifier as it ships, on named target specs. */
export async function evaluateZooModel(
  id: string,
  targets: Array<{ name: string; spec: string }>,
  options: { batchSize?: number; datasetRegistry?: DatasetRegistry; /** Dataset plugin modules to register first (`--dataset-plugin`). */ datasetPlugins?: string[]; /** Framing of the targets (default resize). */ framing?: Framing; /** `dfd` (default) or `native`: the source library's own resize ({@link nativeZooTransform}). */ preprocess?: ZooPreprocess } = {},
): Promise<{ results: EvaluationResult[]; mean: number }> {
  const { defaultDatasetRegistry } = await import('./run.js');
  const datasetRegistry = options.datasetRegistry ?? (await defaultDatasetRegistry());
  if (options.datasetPlugins?.length) {
    const { registerDatasetPluginModules } = await import('@dfd/datasets/node');
    await registerDatasetPluginModules(datasetRegistry, options.datasetPlugins.map((m) => (m.startsWith('.') ? resolvePath(m) : m)));
  }
  const [b] = await evaluateBaselines([id], targets, undefined, {
    batchSize: options.batchSize ?? 128,
    datasetRegistry,
    ...(options.framing ? { framing: options.framing } : {}),
    ...(options.preprocess ? { preprocess: options.preprocess } : {}),
  });
  return { results: b!.results, mean: b!.mean };
}
