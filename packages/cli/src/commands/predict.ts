import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DfdError, EXPRESSIONS } from '@dfd/core';
import { useBackend, type BackendName } from '@dfd/backends';
import { evalTransform, type RgbImage } from '@dfd/datasets';
import { decodeImageFile } from '@dfd/datasets/node';
import { DfdNet, modelFraming } from '@dfd/model';
import { loadModelDir } from '@dfd/model/node';
import { frameImage, parseFraming, type FaceBox, type Framing } from '@dfd/zoo';
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
  /** With `detect`: which face of the image (0 = the detector's best), and its box in the image's pixels. */
  face?: number;
  box?: FaceBox;
  /** With `detect` and alignment: the eye centres (image pixels) the crop was levelled by. */
  eyes?: { left: [number, number]; right: [number, number] };
}

/** Options of face detection in {@link predictImages}. */
export interface PredictDetectOptions {
  /** Detector input side, a multiple of 32 (default 416; 320 / 224 are faster, miss small faces). */
  inputSize?: number;
  /** Detector score threshold (default 0.5). */
  scoreThreshold?: number;
  /** Margin added on each side of a face box, as a fraction of its longer side (default 0.2). */
  margin?: number;
  /** Level the eyes (zoo landmark net `faceapi:landmarks-tiny`) before cropping (default true). */
  align?: boolean;
}

/** Options of {@link predictImages}. */
export interface PredictOptions {
  /** Model folder written by `dfd convert` / `dfd train` (kind dfd-net). */
  model: string;
  images: string[];
  /** Images per forward pass (default 16). */
  batchSize?: number;
  /**
   * Find the faces first (zoo detector `faceapi:tiny-detector`, needs @vladmandic/face-api), crop
   * each with a margin and predict one expression per face. Without it each whole image is one face.
   */
  detect?: PredictDetectOptions;
  /**
   * How each image is framed without `detect` (default: the framing the model's model.json
   * records, else resize): the same framing, and so the same pixels, as training and eval.
   */
  framing?: Framing;
}

/** Frames decoded images with `framing` (loading the zoo detector and landmark net for align). */
async function imageFramer(framing: Framing): Promise<{ frame(image: RgbImage): Promise<RgbImage>; dispose(): void }> {
  if (framing.kind !== 'align') return { frame: async (image) => (await frameImage(image, framing)).image, dispose: () => {} };
  const { loadZooDetector, loadZooLandmarker } = await import('@dfd/zoo/node');
  const detector = await loadZooDetector('faceapi:tiny-detector');
  const landmarker = await loadZooLandmarker('faceapi:landmarks-tiny').catch((err: unknown) => (detector.dispose(), Promise.reject(err)));
  return {
    frame: async (image) => (await frameImage(image, framing, { detector, landmarker })).image,
    dispose: () => (detector.dispose(), landmarker.dispose()),
  };
}

/** Decodes one file (JPEG/PNG/WebP... via sharp in @dfd/datasets/node: grey replicated, alpha dropped), naming the file on failure. */
async function decodeFile(path: string): Promise<RgbImage> {
  if (!existsSync(path)) throw new DfdError('E_PREDICT_IMAGE', `${path}: no such file; check the path`);
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
export async function predictImages(opts: PredictOptions): Promise<{ labels: string[]; predictions: Prediction[]; noFace?: string[] }> {
  if (opts.images.length === 0) throw new DfdError('E_PREDICT_INPUT', 'no images given: dfd predict --model DIR IMAGE...');
  const model = await loadModelDir(opts.model);
  let disposeFramer = (): void => {};
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
    const framing = opts.framing ?? parseFraming(modelFraming(model), `${opts.model}/model.json framing`);
    const framer = !opts.detect && framing.kind !== 'resize' ? await imageFramer(framing) : undefined;
    disposeFramer = () => framer?.dispose();
    const { items, noFace }: { items: FaceItem[]; noFace?: string[] } = opts.detect
      ? await detectFaces(opts.images, opts.detect)
      : { items: opts.images.map((image) => ({ image, rgb: framer ? async () => framer.frame(await decodeFile(image)) : () => decodeFile(image) })) };
    for (let start = 0; start < items.length; start += batchSize) {
      const files = items.slice(start, start + batchSize);
      const pixels = new Float32Array(files.length * size * size * 3);
      for (let i = 0; i < files.length; i++) pixels.set(transform(await files[i]!.rgb()).data, i * size * size * 3);
      const [logits, probs] = tf.tidy(() => {
        const x = tf.tensor4d(pixels, [files.length, size, size, 3]);
        const l = model.forward(x, { training: false }).logits;
        return [l, tf.softmax(l)];
      });
      const l = (await logits.array()) as number[][];
      const p = (await probs.array()) as number[][];
      logits.dispose();
      probs.dispose();
      files.forEach(({ image, face }, i) => {
        const pi = p[i]!;
        const index = pi.indexOf(Math.max(...pi));
        predictions.push({ image, label: labels[index]!, index, probability: pi[index]!, logits: l[i]!, probabilities: pi, ...face });
      });
    }
    return { labels, predictions, ...(noFace ? { noFace } : {}) };
  } finally {
    disposeFramer();
    model.dispose();
  }
}

/** One face to classify: its image file, where it is, and its (cropped) pixels. */
interface FaceItem {
  image: string;
  face?: { face: number; box: FaceBox; eyes?: { left: [number, number]; right: [number, number] } };
  rgb: () => Promise<RgbImage>;
}

/** Detects the faces of each file with the zoo detector and crops each with a margin, eyes levelled unless `align` is false. */
async function detectFaces(images: string[], o: PredictDetectOptions): Promise<{ items: FaceItem[]; noFace: string[] }> {
  const { loadZooDetector, loadZooLandmarker } = await import('@dfd/zoo/node');
  const { cropFace, eyeCentres } = await import('@dfd/zoo');
  const detector = await loadZooDetector('faceapi:tiny-detector');
  const landmarker = o.align === false ? null : await loadZooLandmarker('faceapi:landmarks-tiny').catch((err: unknown) => (detector.dispose(), Promise.reject(err)));
  const items: FaceItem[] = [];
  const noFace: string[] = [];
  try {
    for (const image of images) {
      const rgb = await decodeFile(image);
      const boxes = await detector.detect(rgb, { inputSize: o.inputSize ?? 416, scoreThreshold: o.scoreThreshold ?? 0.5 });
      if (boxes.length === 0) noFace.push(image);
      for (const [face, box] of boxes.entries()) {
        const eyes = landmarker ? eyeCentres(await landmarker.landmarks(rgb, box)) : undefined;
        const crop = cropFace(rgb, box, { margin: o.margin ?? 0.2, ...(eyes ? { eyes } : {}) });
        items.push({ image, face: { face, box, ...(eyes ? { eyes } : {}) }, rgb: () => Promise.resolve(crop) });
      }
    }
  } finally {
    detector.dispose();
    landmarker?.dispose();
  }
  return { items, noFace };
}

function parseNumber(flag: string, v: string, ok: (n: number) => boolean, what: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new DfdError('E_PREDICT_INPUT', `${flag} ${v}: must be ${what}`);
  return n;
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
    .option('--json', 'print logits, probabilities and label per image (per face with --detect, with its box) as JSON')
    .option('--detect', 'find the faces first (zoo detector faceapi:tiny-detector; needs @vladmandic/face-api), crop each with a margin and predict one expression per face')
    .option('--detect-size <n>', 'with --detect: detector input side, a multiple of 32 (default 416; 320 / 224 are faster but miss small faces)')
    .option('--detect-threshold <p>', 'with --detect: detector score threshold (default 0.5)')
    .option('--margin <f>', 'with --detect: margin added on each side of a face box, as a fraction of its longer side (default 0.2)')
    .option('--framing <kind>', "without --detect: resize | centre-crop | align (default: the framing the model records in model.json)")
    .option('--no-align', 'with --detect: crop without levelling the eyes (by default the zoo landmark net faceapi:landmarks-tiny finds them)')
    .action(async (images: string[], o: { model: string; backend: string; threads?: number; batchSize: string; json?: boolean; detect?: boolean; detectSize?: string; detectThreshold?: string; margin?: string; align: boolean; framing?: string }) => {
      const used = await useBackend(o.backend as BackendName | 'auto', { gradients: false, ...(o.threads != null ? { threads: o.threads } : {}) });
      const batchSize = Number(o.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new DfdError('E_PREDICT_INPUT', `--batch-size ${o.batchSize}: must be a positive integer`);
      if (!o.detect) {
        const stray = (['detectSize', 'detectThreshold', 'margin', 'align'] as const).find((k) => (k === 'align' ? o.align === false : o[k] !== undefined));
        if (stray === 'align') throw new DfdError('E_PREDICT_INPUT', '--no-align only applies with --detect');
        if (stray) throw new DfdError('E_PREDICT_INPUT', `--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only applies with --detect`);
      }
      const detect = o.detect
        ? {
            inputSize: parseNumber('--detect-size', o.detectSize ?? '416', (n) => Number.isInteger(n) && n >= 32 && n % 32 === 0, 'a positive multiple of 32 (416, 320, 224)'),
            scoreThreshold: parseNumber('--detect-threshold', o.detectThreshold ?? '0.5', (n) => n > 0 && n < 1, 'between 0 and 1 (exclusive)'),
            margin: parseNumber('--margin', o.margin ?? '0.2', (n) => n >= 0 && n <= 2, 'between 0 and 2'),
            align: o.align,
          }
        : undefined;
      if (o.framing && detect) throw new DfdError('E_PREDICT_INPUT', '--framing applies without --detect (--detect crops each face itself)');
      const framing = o.framing ? (await import('@dfd/zoo')).framingFromKind(o.framing) : undefined;
      const { labels, predictions, noFace } = await predictImages({ model: o.model, images, batchSize, ...(detect ? { detect } : {}), ...(framing ? { framing } : {}) });
      if (o.json) {
        process.stdout.write(JSON.stringify({ model: o.model, backend: used.name, labels, predictions, ...(noFace ? { noFace } : {}) }, null, 2) + '\n');
        return;
      }
      if (detect) {
        const rows = [['image', 'face', 'box (x,y,w,h)', 'label', 'probability', 'score']];
        for (const p of predictions) rows.push([p.image, String(p.face), [p.box!.x, p.box!.y, p.box!.width, p.box!.height].map((v) => Math.round(v)).join(','), p.label, p.probability.toFixed(4), p.box!.score.toFixed(3)]);
        for (const image of noFace ?? []) rows.push([image, '-', '-', 'no face found', '-', '-']);
        const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        process.stdout.write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!))).join('  ').trimEnd()).join('\n') + '\n');
        return;
      }
      const w = Math.max(5, ...predictions.map((p) => p.image.length));
      const lw = Math.max(5, ...labels.map((l) => l.length));
      const lines = [`${'image'.padEnd(w)}  ${'label'.padEnd(lw)}  probability`];
      for (const p of predictions) lines.push(`${p.image.padEnd(w)}  ${p.label.padEnd(lw)}  ${p.probability.toFixed(4)}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
