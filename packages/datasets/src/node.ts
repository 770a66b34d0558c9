import { lstat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DfdError } from '@dfd/core';
import { InputFileError, readRegularFile } from '@dfd/core/node';
import { DatasetSpecError, ImageDecodeError } from './errors.js';
import { describeSource, setDefaultImageDecoder, toRgb } from './image.js';
import { assertDatasetPlugin, DatasetRegistry, setSpecPathProbe } from './registry.js';
import { syntheticPlugin } from './synthetic.js';
import type { DatasetPlugin, DecodeHint, ImageDecoder, ImageSource, RgbImage } from './types.js';
import { affectnetPlugin } from './formats/affectnet.js';
import { fer2013Plugin, ferplusPlugin } from './formats/fer.js';
import { folderPlugin, identityFolderPlugin, mmaPlugin, orlPlugin, sfewPlugin, utkfacePlugin } from './formats/folders.js';
import { multipiePlugin } from './formats/multipie.js';
import { rafdbPlugin } from './formats/rafdb.js';

export { affectnetPlugin, affectnetToCanonical, readNpyScalar } from './formats/affectnet.js';
export { fer2013Plugin, ferplusPlugin, readFer2013Csv } from './formats/fer.js';
export { UTKFACE_FACTORS, folderPlugin, identityFolderPlugin, mmaPlugin, orlPlugin, sfewPlugin, utkfacePlugin } from './formats/folders.js';
export { MULTIPIE_CAMERAS, multipiePlugin } from './formats/multipie.js';
export { RAFDB_FACTORS, rafdbPlugin, readAttributes } from './formats/rafdb.js';
export { IMAGE_EXTENSIONS, safeJoin, splitCsvLine } from './formats/fsutil.js';
export { checkImageHeaders, imageHeaderProblem, type ImageCheckResult, type ImageProblem } from './check.js';

type Sharp = typeof import('sharp');
let sharpModule: Promise<Sharp> | undefined;

/**
 * sharp, imported on first use: it is an optional peer dependency (a native module browser users
 * do not need), so a Node user without it gets this error instead of a failed import.
 */
function loadSharp(name: string): Promise<Sharp> {
  sharpModule ??= import('sharp').then(
    (m) => ((m as { default?: Sharp }).default ?? m) as Sharp,
    (err: unknown) => {
      sharpModule = undefined;
      throw new DfdError(
        'E_SHARP_MISSING',
        `cannot decode ${name}: decoding image files on Node needs the 'sharp' package, which is not installed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); ` +
          'run `npm install sharp` (an optional peer dependency of @dfd/datasets; @dfd/trainer and @dfd/cli install it)',
        { cause: err },
      );
    },
  );
  return sharpModule;
}

/** Largest image file the decoder reads (512 MB). */
export const MAX_IMAGE_FILE_BYTES = 512 * 1024 * 1024;
/** Most pixels the decoder decodes (8192 x 8192), checked from the image header before decoding. */
export const MAX_DECODED_PIXELS = 8192 * 8192;

/**
 * Reads an image file through the guarded reader: a FIFO, device, socket or folder named like an
 * image is refused at once (instead of hanging the decoder), and so is a file over the size cap.
 */
async function readImageFile(path: string, name: string): Promise<Buffer> {
  try {
    return await readRegularFile(path, { what: 'image', maxBytes: MAX_IMAGE_FILE_BYTES });
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    const reason = err.message.slice(path.length + 2);
    throw new ImageDecodeError(name, /\(ENOENT\)$/.test(reason) ? `file not found: ${reason}` : reason, { cause: err });
  }
}

/** Decodes an image (file path or encoded bytes) with sharp into 8-bit RGB; grey, palette and alpha images become RGB. */
async function decodeWithSharp(input: string | Uint8Array, name: string, hint?: DecodeHint): Promise<RgbImage> {
  const sharp = await loadSharp(name);
  const bytes = typeof input === 'string' ? await readImageFile(input, name) : input;
  try {
    // 'truncated' fails on cut-off files but tolerates the benign libjpeg warnings PIL also ignores.
    // The pixel cap, from the header (nothing decoded yet): a 16000x16000 PNG would take ~1 GB.
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (meta.width && meta.height && meta.width * meta.height > MAX_DECODED_PIXELS) {
      throw new ImageDecodeError(name, `its header says ${meta.width}x${meta.height} = ${(meta.width * meta.height).toLocaleString('en-US')} pixels, more than the ${MAX_DECODED_PIXELS.toLocaleString('en-US')} (8192x8192) dfd decodes; downscale it first`);
    }
    let img = sharp(bytes, { failOn: 'truncated', limitInputPixels: MAX_DECODED_PIXELS });
    if (hint?.maxSide) img = img.resize({ width: hint.maxSide, height: hint.maxSide, fit: 'inside', withoutEnlargement: true });
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return toRgb(info.width, info.height, info.channels, new Uint8Array(data.buffer, data.byteOffset, data.length));
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new ImageDecodeError(name, msg.includes('missing') || msg.includes('ENOENT') ? `file not found: ${msg}` : msg, { cause: err });
  }
}

/** Decodes an image file into RGB uint8 with sharp (Node only). */
export async function decodeImageFile(path: string, hint?: DecodeHint): Promise<RgbImage> {
  return decodeWithSharp(path, path, hint);
}

/** Node image decoder: files and bytes through sharp, `file:` URLs as files, http(s) URLs fetched. */
export const nodeImageDecoder: ImageDecoder = async (source: ImageSource, hint?: DecodeHint) => {
  switch (source.kind) {
    case 'file':
      return decodeWithSharp(source.path, source.path, hint);
    case 'bytes':
      return decodeWithSharp(source.data, describeSource(source), hint);
    case 'url': {
      if (source.url.startsWith('file:')) return decodeWithSharp(fileURLToPath(source.url), source.url, hint);
      const res = await fetch(source.url);
      if (!res.ok) throw new ImageDecodeError(source.url, `HTTP ${res.status}`);
      return decodeWithSharp(new Uint8Array(await res.arrayBuffer()), source.url, hint);
    }
    case 'pixels':
      return toRgb(source.width, source.height, source.channels, source.data);
    case 'generated':
      return source.render();
  }
};

// Importing this entry makes sharp the default decoder of loaders and decodeImage.
setDefaultImageDecoder(nodeImageDecoder);
setSpecPathProbe(async (path) => {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
});

/** Every built-in plugin: synthetic plus the file formats. */
/** `imagefolder:` = `folder:` (the layout torchvision's ImageFolder reads, under the name users know from it). */
export const imagefolderPlugin: DatasetPlugin = { ...folderPlugin, name: 'imagefolder', description: `alias of folder: ${folderPlugin.description}` };

export const BUILTIN_DATASET_PLUGINS: readonly DatasetPlugin[] = [
  syntheticPlugin,
  folderPlugin,
  imagefolderPlugin,
  rafdbPlugin,
  ferplusPlugin,
  fer2013Plugin,
  sfewPlugin,
  mmaPlugin,
  affectnetPlugin,
  multipiePlugin,
  utkfacePlugin,
  identityFolderPlugin,
  orlPlugin,
];

/** A registry with every built-in plugin plus `extra`. */
export function createNodeDatasetRegistry(extra: Iterable<DatasetPlugin> = []): DatasetRegistry {
  return new DatasetRegistry([...BUILTIN_DATASET_PLUGINS, ...extra]);
}

/**
 * Imports a user plugin module (`--dataset-plugin ./my-plugin.js`): its named export
 * `datasetPlugin`, else its default export; either may be one plugin or an array of them.
 * Relative paths resolve against `cwd`; bare names are imported as packages.
 */
export async function loadDatasetPluginModule(specifier: string, cwd = process.cwd()): Promise<DatasetPlugin[]> {
  const isPath = specifier.startsWith('.') || isAbsolute(specifier) || /\.(m?js|cjs|ts)$/.test(specifier);
  const url = isPath ? pathToFileURL(resolve(cwd, specifier)).href : specifier;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new DatasetSpecError(`cannot import dataset plugin module '${specifier}': ${err instanceof Error ? err.message : String(err)}`);
  }
  const exported = mod.datasetPlugin ?? mod.default;
  if (exported === undefined) {
    throw new DatasetSpecError(`dataset plugin module '${specifier}' exports neither 'datasetPlugin' nor a default export`);
  }
  const list = Array.isArray(exported) ? exported : [exported];
  list.forEach((p, i) => assertDatasetPlugin(p, `dataset plugin module '${specifier}'${list.length > 1 ? ` [${i}]` : ''}`));
  return list as DatasetPlugin[];
}

/** Imports each module and registers its plugins into `registry`. */
export async function registerDatasetPluginModules(registry: DatasetRegistry, specifiers: readonly string[], cwd?: string): Promise<DatasetPlugin[]> {
  const added: DatasetPlugin[] = [];
  for (const s of specifiers) {
    for (const p of await loadDatasetPluginModule(s, cwd)) {
      registry.register(p);
      added.push(p);
    }
  }
  return added;
}
