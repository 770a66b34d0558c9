import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DfdError, EXPRESSIONS } from '@dfd/core';
import { useBackend, type BackendName } from '@dfd/backends';
import { evalTransform, type RgbImage } from '@dfd/datasets';
import { decodeImageFile } from '@dfd/datasets/node';
import { DfdNet } from '@dfd/model';
import { loadModelDir } from '@dfd/model/node';
import { parseThreads, THREADS_HELP } from './train.js';

/** One image's prediction. */
export interface Prediction {
  image: string;
  /** Predicted class name (canonical expression names for a 7-class DFD-Net). */
  label: string;
  index: number;
  probability: number;
  logits: number[];
  probabilities: number[];
}

/** Options of {@link predictImages}. */
export interface PredictOptions {
  /** Model folder written by `dfd convert` / `dfd train` (kind dfd-net). */
  model: string;
  images: string[];
  /** Images per forward pass (default 16). */
  batchSize?: number;
}

/** Decodes one file (JPEG/PNG/WebP... via sharp in @dfd/datasets/node: grey replicated, alpha dropped), naming the file on failure. */
async function decodeFile(path: string): Promise<RgbImage> {
  try {
    return await decodeImageFile(path);
  } catch (err) {
    throw new DfdError('E_PREDICT_IMAGE', `${path}: cannot decode the image (${(err as Error).message}); use a JPEG, PNG or WebP file`, { cause: err });
  }
}

/**
 * Classifies image files with a DFD-Net model folder: decode, resize to the model's input size,
 * ImageNet normalisation (the evaluation transform of training), inference-mode forward.
 */
export async function predictImages(opts: PredictOptions): Promise<{ labels: string[]; predictions: Prediction[] }> {
  if (opts.images.length === 0) throw new DfdError('E_PREDICT_INPUT', 'no images given: dfd predict --model DIR IMAGE...');
  const model = await loadModelDir(opts.model);
  try {
    if (!(model instanceof DfdNet)) {
      throw new DfdError('E_PREDICT_INPUT', `--model ${opts.model}: this is not an expression classifier (kind dfd-net) but ${model.constructor.name}; predict needs a DFD-Net model folder`);
    }
    let labels: string[] = [];
    try {
      const json = JSON.parse(await readFile(join(opts.model, 'model.json'), 'utf8')) as { labels?: unknown };
      if (Array.isArray(json.labels)) labels = json.labels.map(String);
    } catch {
      // loadModelDir already validated model.json; labels are optional.
    }
    if (labels.length !== model.config.numClasses) labels = model.config.numClasses === EXPRESSIONS.length ? [...EXPRESSIONS] : Array.from({ length: model.config.numClasses }, (_, i) => `class${i}`);
    const size = model.config.inputSize;
    const transform = evalTransform({ size });
    const batchSize = Math.max(1, opts.batchSize ?? 16);
    const predictions: Prediction[] = [];
    for (let start = 0; start < opts.images.length; start += batchSize) {
      const files = opts.images.slice(start, start + batchSize);
      const pixels = new Float32Array(files.length * size * size * 3);
      for (let i = 0; i < files.length; i++) pixels.set(transform(await decodeFile(files[i]!)).data, i * size * size * 3);
      const [logits, probs] = tf.tidy(() => {
        const x = tf.tensor4d(pixels, [files.length, size, size, 3]);
        const l = model.forward(x, { training: false }).logits;
        return [l, tf.softmax(l)];
      });
      const l = (await logits.array()) as number[][];
      const p = (await probs.array()) as number[][];
      logits.dispose();
      probs.dispose();
      files.forEach((image, i) => {
        const pi = p[i]!;
        const index = pi.indexOf(Math.max(...pi));
        predictions.push({ image, label: labels[index]!, index, probability: pi[index]!, logits: l[i]!, probabilities: pi });
      });
    }
    return { labels, predictions };
  } finally {
    model.dispose();
  }
}

/** `dfd predict`: expression of each image file with a DFD-Net model folder. */
export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('predict the facial expression of image files (JPEG/PNG/WebP) with a DFD-Net model folder')
    .argument('<images...>', 'image files')
    .requiredOption('--model <dir>', 'model folder (model.json + weights.bin) from dfd convert or dfd train')
    .option('--backend <name>', 'tfjs backend: auto | cpu | wasm | webgpu | tensorflow | tensorflow-gpu', 'auto')
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .option('--batch-size <n>', 'images per forward pass', '16')
    .option('--json', 'print logits, probabilities and label per image as JSON')
    .action(async (images: string[], o: { model: string; backend: string; threads?: number; batchSize: string; json?: boolean }) => {
      const used = await useBackend(o.backend as BackendName | 'auto', { gradients: false, ...(o.threads != null ? { threads: o.threads } : {}) });
      const batchSize = Number(o.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new DfdError('E_PREDICT_INPUT', `--batch-size ${o.batchSize}: must be a positive integer`);
      const { labels, predictions } = await predictImages({ model: o.model, images, batchSize });
      if (o.json) {
        process.stdout.write(JSON.stringify({ model: o.model, backend: used.name, labels, predictions }, null, 2) + '\n');
        return;
      }
      const w = Math.max(5, ...predictions.map((p) => p.image.length));
      const lw = Math.max(5, ...labels.map((l) => l.length));
      const lines = [`${'image'.padEnd(w)}  ${'label'.padEnd(lw)}  probability`];
      for (const p of predictions) lines.push(`${p.image.padEnd(w)}  ${p.label.padEnd(lw)}  ${p.probability.toFixed(4)}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
