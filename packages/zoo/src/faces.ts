import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { DatasetSpecError, escapeSpecLocation, intOption, type Dataset, type DatasetContext, type DatasetPlugin, type DatasetRegistry, type ImageSource, type Sample, type SpecOptions } from '@dfd/datasets';
import { createNodeDatasetRegistry, nodeImageDecoder } from '@dfd/datasets/node';
import { cropFace } from './crop.js';
import { detectOptions, type FaceBox, type TinyFaceDetector } from './detector.js';
import { eyeCentres, type FaceLandmarker } from './landmarks.js';
import { describeFraming, frameImage, type AlignCase, type Framing } from './framing.js';
import { loadZooDetector, loadZooLandmarker } from './node.js';

/**
 * The `faces:` dataset plugin: `faces:<any dataset spec>` detects the face in every image of the
 * wrapped dataset with the zoo detector, crops it with a margin (eyes levelled by the zoo landmark
 * net) and serves the crops instead of the images. Crops are written once to a cache folder as PNG
 * files keyed by the image (path, size and mtime, or its bytes) and the options, so later runs do
 * not detect again. Register it with `--dataset-plugin @dfd/zoo/faces`.
 */

/** What {@link facesDatasetPlugin} can be given (defaults: the zoo nets, built-in dataset formats). */
export interface FacesPluginOptions {
  /** Resolves the wrapped spec (default: every built-in format). */
  registry?: DatasetRegistry;
  loadDetector?: () => Promise<TinyFaceDetector>;
  loadLandmarker?: () => Promise<FaceLandmarker>;
}

/** Options of a `faces:` spec; every other query option goes to the wrapped spec. */
const OWN = ['margin', 'crop', 'detect-size', 'threshold', 'align', 'noface', 'cache'] as const;

/** Default cache folder: $DFD_CACHE_DIR/faces, else ~/.cache/dfd/faces. */
export function defaultFacesCacheDir(): string {
  return join(process.env.DFD_CACHE_DIR ?? join(homedir(), '.cache', 'dfd'), 'faces');
}

function numberOption(options: SpecOptions, key: string, fallback: number, ok: (n: number) => boolean, what: string): number {
  const raw = options[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !ok(n)) throw new DatasetSpecError(`option '${key}=${raw}' must be ${what}`);
  return n;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A lossless 8-bit RGB PNG of `image` (what the crop cache stores; any decoder reads it back exactly). */
export function encodePng(image: { width: number; height: number; data: Uint8Array }): Buffer {
  const { width, height, data } = image;
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) raw.set(data.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** What identifies a sample's pixels for the cache: a file's path, size and mtime; otherwise its bytes. */
async function sourceKey(source: ImageSource): Promise<string> {
  const h = createHash('sha256');
  switch (source.kind) {
    case 'file': {
      const s = await stat(source.path);
      h.update(`file\0${source.path}\0${s.size}\0${s.mtimeMs}`);
      break;
    }
    case 'url':
      h.update(`url\0${source.url}`);
      break;
    case 'bytes':
    case 'pixels':
      h.update(`${source.kind}\0`).update(source.data);
      break;
    case 'generated':
      h.update('generated\0').update(source.render().data);
      break;
  }
  return h.digest('hex');
}

/** Cache record of one image: where its crop is, or that it has no face. */
export interface FacesCacheEntry {
  face: boolean;
  /** The detector's best box in the image's pixels. */
  box?: FaceBox;
  /** Eye centres the crop was levelled by (with align). */
  eyes?: { left: [number, number]; right: [number, number] };
}

/** The `faces:` dataset plugin with injectable loaders (tests, other registries). */
export function facesDatasetPlugin(deps: FacesPluginOptions = {}): DatasetPlugin {
  return {
    name: 'faces',
    description:
      'faces:<spec> - the face of every image of <spec>, found by the zoo detector, cropped with a margin, eyes levelled; crops cached (?margin=0.2&crop=160&detect-size=416&threshold=0.5&align=1&noface=keep|skip&cache=DIR)',
    labels: { expression: true, factors: [] },
    async load(location: string, options: SpecOptions, context: DatasetContext): Promise<Dataset> {
      const margin = numberOption(options, 'margin', 0.2, (n) => n >= 0 && n <= 2, 'between 0 and 2');
      const crop = intOption(options, 'crop', 160, 16, 1024);
      const { inputSize, scoreThreshold } = (() => {
        try {
          return detectOptions({ inputSize: intOption(options, 'detect-size', 416, 32, 4096), scoreThreshold: numberOption(options, 'threshold', 0.5, () => true, 'a number') });
        } catch (err) {
          throw new DatasetSpecError(`faces: ${(err as Error).message}`);
        }
      })();
      const align = (options.align ?? '1') !== '0';
      const noface = options.noface ?? 'keep';
      if (noface !== 'keep' && noface !== 'skip') throw new DatasetSpecError(`option 'noface=${noface}' must be keep (the whole image) or skip`);
      const cacheDir = options.cache || defaultFacesCacheDir();
      if (!location) throw new DatasetSpecError("faces: needs the dataset to take the faces from, e.g. faces:folder:/data/photos");
      const forward = new URLSearchParams(Object.entries(options).filter(([k]) => !(OWN as readonly string[]).includes(k)));
      // The location came back with its %3F decoded: escape it again, or a '?' in a path would start options.
      const innerSpec = forward.size > 0 ? `${escapeSpecLocation(location)}?${forward}` : escapeSpecLocation(location);
      const inner = await (deps.registry ?? createNodeDatasetRegistry()).resolve(innerSpec, { allowEmpty: true });
      for (const w of inner.warnings) context.warn(w);

      const settings = JSON.stringify({ v: 1, margin, crop, inputSize, scoreThreshold, align });
      let detector: TinyFaceDetector | undefined;
      let landmarker: FaceLandmarker | undefined;
      let noFace = 0;
      const tmp = `${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
      await mkdir(cacheDir, { recursive: true });
      const faceOf = async (sample: Sample): Promise<Sample | null> => {
        const key = createHash('sha256').update(settings).update(await sourceKey(sample.image)).digest('hex').slice(0, 40);
        const png = join(cacheDir, `${key}.png`);
        const meta = join(cacheDir, `${key}.json`);
        let entry: FacesCacheEntry | undefined;
        try {
          entry = JSON.parse(await readFile(meta, 'utf8')) as FacesCacheEntry;
          if (entry.face) await stat(png);
        } catch {
          entry = undefined;
        }
        if (!entry) {
          // Outside training (dfd data inspect) no backend may be set up yet: the CPU one then.
          if (tf.engine().backendNames().length === 0) await (await import('@dfd/backends')).useBackend('cpu', { gradients: false });
          detector ??= await (deps.loadDetector ?? (() => loadZooDetector()))();
          if (align) landmarker ??= await (deps.loadLandmarker ?? (() => loadZooLandmarker()))();
          const image = await nodeImageDecoder(sample.image);
          const [box] = await detector.detect(image, { inputSize, scoreThreshold });
          entry = box ? { face: true, box } : { face: false };
          if (box) {
            const eyes = landmarker ? eyeCentres(await landmarker.landmarks(image, box)) : undefined;
            if (eyes) entry.eyes = eyes;
            const face = cropFace(image, box, { margin, size: crop, ...(eyes ? { eyes } : {}) });
            // Unique temporary names: runs sharing the cache (grid workers) never write one file together.
            await writeFile(`${png}.${tmp}`, encodePng(face));
            await rename(`${png}.${tmp}`, png);
          }
          await writeFile(`${meta}.${tmp}`, JSON.stringify(entry));
          await rename(`${meta}.${tmp}`, meta);
        }
        if (entry.face) return { ...sample, image: { kind: 'file', path: png } };
        noFace++;
        return noface === 'skip' ? null : sample;
      };
      const splits: Dataset['splits'] = {};
      try {
        for (const name of ['train', 'val', 'test'] as const) {
          const list = inner.splits[name];
          if (!list) continue;
          const out: Sample[] = [];
          for (const s of list) {
            const f = await faceOf(s);
            if (f) out.push(f);
          }
          splits[name] = out;
        }
      } finally {
        detector?.dispose();
        landmarker?.dispose();
      }
      if (noFace > 0) {
        context.warn({ kind: 'no-face', count: noFace, message: `${noFace} image(s) without a detected face ${noface === 'skip' ? 'skipped' : 'kept whole'} (noface=${noface})` });
      }
      return {
        name: `faces:${innerSpec}`,
        plugin: 'faces',
        splits,
        hasExpression: inner.hasExpression,
        ...(inner.factors ? { factors: inner.factors } : {}),
        warnings: [],
      };
    },
  };
}

/** `--dataset-plugin @dfd/zoo/faces`: the `faces:` plugin with the zoo nets and the built-in formats. */
export const datasetPlugin: DatasetPlugin = facesDatasetPlugin();

/** Options of {@link frameDataset}. */
export interface FrameDatasetOptions {
  /** Where framed images are cached (default $DFD_CACHE_DIR/framing, else ~/.cache/dfd/framing). */
  cacheDir?: string;
  loadDetector?: () => Promise<TinyFaceDetector>;
  loadLandmarker?: () => Promise<FaceLandmarker>;
}

/** Default cache folder of {@link frameDataset}. */
export function defaultFramingCacheDir(): string {
  return join(process.env.DFD_CACHE_DIR ?? join(homedir(), '.cache', 'dfd'), 'framing');
}

/** Counts of how `align` found the faces of a dataset. */
export type AlignCounts = Record<AlignCase, number>;

/**
 * Frames every image of `dataset` with `framing` ({@link frameImage}); `resize` returns the dataset
 * as it is. Framed images are written once as lossless PNGs to the cache, keyed by the framing and
 * the image (path, size, mtime, or its bytes), and served from there: the source, every target,
 * stage 1, eval and predict all get the same bytes for the same image. For `align`, how each face
 * was found (detected / detected after upscaling / whole image) is counted and added to the
 * dataset's warnings (kind `framing`), with the counts in `alignCounts`.
 */
export async function frameDataset(dataset: Dataset, framing: Framing, options: FrameDatasetOptions = {}): Promise<Dataset & { alignCounts?: AlignCounts }> {
  if (framing.kind === 'resize') return dataset;
  const cacheDir = options.cacheDir || defaultFramingCacheDir();
  await mkdir(cacheDir, { recursive: true });
  const settings = JSON.stringify({ v: 1, framing });
  const tmp = `${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  const counts: AlignCounts = { detected: 0, upscaled: 0, 'whole-image': 0 };
  let detector: TinyFaceDetector | undefined;
  let landmarker: FaceLandmarker | undefined;
  const frame = async (sample: Sample): Promise<Sample> => {
    const key = createHash('sha256').update(settings).update(await sourceKey(sample.image)).digest('hex').slice(0, 40);
    const png = join(cacheDir, `${key}.png`);
    const meta = join(cacheDir, `${key}.json`);
    let found: AlignCase | undefined;
    try {
      await stat(png);
      found = (JSON.parse(await readFile(meta, 'utf8')) as { case?: AlignCase }).case;
    } catch {
      if (framing.kind === 'align') {
        if (tf.engine().backendNames().length === 0) await (await import('@dfd/backends')).useBackend('cpu', { gradients: false });
        detector ??= await (options.loadDetector ?? (() => loadZooDetector()))();
        landmarker ??= await (options.loadLandmarker ?? (() => loadZooLandmarker()))();
      }
      const out = await frameImage(await nodeImageDecoder(sample.image), framing, detector && landmarker ? { detector, landmarker } : undefined);
      found = out.case;
      await writeFile(`${meta}.${tmp}`, JSON.stringify(found ? { case: found } : {}));
      await rename(`${meta}.${tmp}`, meta);
      await writeFile(`${png}.${tmp}`, encodePng(out.image));
      await rename(`${png}.${tmp}`, png);
    }
    if (found) counts[found]++;
    return { ...sample, image: { kind: 'file', path: png } };
  };
  const splits: Dataset['splits'] = {};
  try {
    for (const name of ['train', 'val', 'test'] as const) {
      const list = dataset.splits[name];
      if (!list) continue;
      const out: Sample[] = [];
      for (const s of list) out.push(await frame(s));
      splits[name] = out;
    }
  } finally {
    detector?.dispose();
    landmarker?.dispose();
  }
  const warnings = [...dataset.warnings];
  if (framing.kind === 'align') {
    const total = counts.detected + counts.upscaled + counts['whole-image'];
    warnings.push({
      kind: 'framing',
      count: counts.upscaled + counts['whole-image'],
      message: `framing ${describeFraming(framing)} of ${dataset.name}: ${counts.detected} of ${total} face(s) detected, ${counts.upscaled} detected after upscaling, ${counts['whole-image']} framed from the whole image (no face found)`,
    });
  }
  return { ...dataset, splits, warnings, ...(framing.kind === 'align' ? { alignCounts: counts } : {}) };
}
