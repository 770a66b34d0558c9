import type { Command } from 'commander';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { useBackend } from '@dfd/backends';
import { DfdError } from '@dfd/core';
import { IMAGENET_MEAN, IMAGENET_STD } from '@dfd/datasets';
import { DfdNet, modelKind, modelToArtifacts, type DfdModel, type WebManifest } from '@dfd/model';
import { loadModelDir } from '@dfd/model/node';

/** Options of {@link exportForWeb}. */
export interface ExportOptions {
  /** A model folder written by `saveModelDir` (model.json + weights.bin). */
  model: string;
  /** Output folder; created, or refreshed in place. */
  out: string;
  /** Also copy this built web app (tools/web/dist) into `out`, so the folder is a complete site. */
  app?: string;
  /**
   * Copy the zoo face detector (and landmark net) into `out/faces/` when @vladmandic/face-api is
   * installed, so the app detects faces (default true; false: the app centre-crops).
   */
  faces?: boolean;
  /**
   * Replace files in `out` that dfd did not export (default false: `out` must be empty, new, or a
   * folder dfd exported, recognised by its manifest.json, before any file in it is replaced).
   */
  overwrite?: boolean;
}

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? join(rel, e.name) : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, r)));
    else out.push(r);
  }
  return out;
}

/** Whether `out` holds a dfd export (manifest.json of format 'dfd-web'). */
async function isDfdExport(out: string): Promise<boolean> {
  try {
    return (JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { format?: unknown }).format === 'dfd-web';
  } catch {
    return false;
  }
}

/**
 * Refuses (E_EXPORT_OUT, nothing written) to replace files in `out` that a dfd export did not
 * write: an `index.html` of the user's, say, when `--app` would copy the app over it.
 */
async function checkExportOut(out: string, app: string | undefined, overwrite: boolean): Promise<void> {
  if (overwrite || !(await isDir(out)) || (await isDfdExport(out))) return;
  const ours = ['model.json', 'weights.bin', 'manifest.json', 'faces', ...(app ? await filesUnder(app) : [])];
  const clash: string[] = [];
  for (const rel of ours) if (await stat(join(out, rel)).then(() => true, () => false)) clash.push(rel);
  if (clash.length > 0) {
    throw new DfdError(
      'E_EXPORT_OUT',
      `--out ${out}: it is not a folder dfd exported (no dfd manifest.json) and holds ${clash.slice(0, 5).join(', ')}${clash.length > 5 ? ` (+${clash.length - 5} more)` : ''}, which the export would replace; nothing was written. Choose another --out, or pass --overwrite to replace them.`,
    );
  }
}

/** Whether the export carries face detection, and why not when it does not. */
export type ExportFaces = { on: true; detector: string; landmarks: string; source: string } | { on: false; reason: string };

/** Summary of one export, printed by the command and returned to scripts. */
export interface ExportResult {
  out: string;
  files: string[];
  manifest: WebManifest;
  weightBytes: number;
  faces: ExportFaces;
}

/**
 * Write what the browser app loads (needs an active tfjs backend; the command uses cpu): model.json + weights.bin (re-serialised from the loaded
 * model, so a corrupt or mismatched folder fails here and not in a user's browser) and
 * manifest.json with labels, input size and normalisation; optionally the built app itself.
 */
export async function exportForWeb(opts: ExportOptions): Promise<ExportResult> {
  const modelDir = resolve(opts.model);
  const out = resolve(opts.out);
  if (!(await isDir(modelDir))) {
    throw new DfdError('E_EXPORT_INPUT', `--model ${opts.model}: no such folder; pass a folder written by 'dfd train' or saveModelDir (model.json + weights.bin)`);
  }
  let model: DfdModel;
  try {
    model = await loadModelDir(modelDir);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DfdError('E_EXPORT_INPUT', `--model ${opts.model}: cannot load the model: ${why}`, { cause: err });
  }
  try {
    if (!(model instanceof DfdNet)) {
      throw new DfdError('E_EXPORT_INPUT', `--model ${opts.model}: this is a '${modelKind(model)}' model, but the web app needs an expression classifier (a DFD-Net, model.json kind 'dfd-net')`);
    }
    // Keep the labels the model was saved with (loading rebuilds the model from its config only).
    const saved = JSON.parse(await readFile(join(modelDir, 'model.json'), 'utf8')) as { labels?: unknown };
    const labels = Array.isArray(saved.labels) && saved.labels.length === model.config.numClasses ? saved.labels.map(String) : undefined;
    const { modelJson, weights } = await modelToArtifacts(model, { labels });
    const c = model.config;
    const manifest: WebManifest = {
      format: 'dfd-web',
      formatVersion: 1,
      model: 'model.json',
      labels: modelJson.labels,
      inputSize: c.inputSize,
      mean: [...IMAGENET_MEAN] as [number, number, number],
      std: [...IMAGENET_STD] as [number, number, number],
      description: `DFD-Net ${c.variant}, width ${c.width}`,
    };

    const app = opts.app ? resolve(opts.app) : undefined;
    if (app && opts.app && !(await isFile(join(app, 'index.html')))) {
      throw new DfdError('E_EXPORT_APP', `--app ${opts.app}: no index.html there; build the app first with 'npm run build -w @dfd/web' (it writes tools/web/dist)`);
    }
    await checkExportOut(out, app, opts.overwrite === true);
    await mkdir(out, { recursive: true });
    const files: string[] = [];
    if (app) {
      await cp(app, out, { recursive: true, force: true });
      files.push(`the app from ${app}`);
    }
    // Write to temporary names, then rename, so a server never serves half a model.
    await writeAtomic(join(out, 'weights.bin'), new Uint8Array(weights));
    await writeAtomic(join(out, 'model.json'), JSON.stringify(modelJson));
    const faces: ExportFaces = opts.faces === false ? { on: false, reason: '--no-faces' } : await copyFaceNets(out);
    if (faces.on) {
      manifest.faceDetector = faces.detector;
      manifest.faceLandmarks = faces.landmarks;
      files.push('faces/ (face detector + landmarks)');
    }
    await writeAtomic(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    files.push('model.json', 'weights.bin', 'manifest.json');
    return { out, files, manifest, weightBytes: weights.byteLength, faces };
  } finally {
    model.dispose();
  }
}

const FACE_NETS = ['faceapi:tiny-detector', 'faceapi:landmarks-tiny'] as const;

/**
 * Copies the zoo face detector and landmark net (weights manifest + shards, as they ship in
 * @vladmandic/face-api) into `out/faces/`; off, with the install command, when the package is
 * missing. `from`: resolve the package from this folder instead of dfd's own install.
 */
export async function copyFaceNets(out: string, from?: string): Promise<ExportFaces> {
  const { zooEntry, installCommand } = await import('@dfd/zoo');
  const { findZooPackage } = await import('@dfd/zoo/node');
  const copied: string[] = [];
  let source = '';
  for (const id of FACE_NETS) {
    const entry = zooEntry(id);
    const pkg = findZooPackage(entry, from);
    if (!pkg) return { on: false, reason: `${entry.package} is not installed; to turn it on: ${installCommand(entry)}, then re-run dfd export` };
    source = `${entry.package} ${pkg.version}`;
    const manifestPath = join(pkg.dir, entry.manifest);
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Array<{ paths: string[] }>;
    await mkdir(join(out, 'faces'), { recursive: true });
    for (const p of manifest.flatMap((g) => g.paths)) {
      // face-api's shards sit beside their manifest; anything else is not a package we know.
      if (basename(p) !== p) throw new DfdError('E_EXPORT_FACES', `${manifestPath}: shard path '${p}' is not beside the manifest; reinstall with: ${installCommand(entry)}`);
      await writeAtomic(join(out, 'faces', p), await readFile(join(dirname(manifestPath), p)));
    }
    await writeAtomic(join(out, 'faces', basename(manifestPath)), JSON.stringify(manifest));
    copied.push(`faces/${basename(manifestPath)}`);
  }
  return { on: true, detector: copied[0]!, landmarks: copied[1]!, source };
}

/** The built app shipped with this checkout (tools/web/dist), if there is one. */
export function defaultAppDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('@dfd/web/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

/** `dfd export`: turn a saved model into a folder the web app can load over HTTP. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write model.json + weights.bin + manifest.json for the web app (tools/web), optionally with the app itself')
    .requiredOption('--model <dir>', 'model folder written by dfd (model.json + weights.bin)')
    .requiredOption('--out <dir>', 'output folder to serve over HTTP')
    .option('--app [dir]', 'also copy the built web app (default: tools/web/dist of this checkout)')
    .option('--overwrite', 'replace files in --out that dfd did not export (an index.html of yours, say)')
    .option('--no-faces', 'do not copy the face detector (by default it is copied from @vladmandic/face-api when installed, and the app detects faces)')
    .action(async (opts: { model: string; out: string; app?: string | boolean; faces: boolean; overwrite?: boolean }) => {
      let app: string | undefined;
      if (opts.app === true) {
        app = defaultAppDir();
        if (!app) throw new DfdError('E_EXPORT_APP', `--app: the web app (@dfd/web) is not installed here; pass --app <dir of a built tools/web/dist>`);
      } else if (typeof opts.app === 'string') {
        app = opts.app;
      }
      // Export only copies numbers through tensors: the CPU backend is always there and enough.
      await useBackend('cpu');
      const result = await exportForWeb({ model: opts.model, out: opts.out, app, faces: opts.faces, overwrite: opts.overwrite === true });
      const m = result.manifest;
      process.stdout.write(
        [
          `exported ${m.description} (${m.inputSize}x${m.inputSize}, ${m.labels.length} labels, ${(result.weightBytes / 1e6).toFixed(2)} MB of weights) to ${result.out}`,
          `  files: ${result.files.join(', ')}`,
          result.faces.on ? `  face detection: on (${result.faces.detector}, ${result.faces.landmarks}; from ${result.faces.source})` : `  face detection: off (${result.faces.reason}); the app centre-crops the photo`,
          app ? `  serve it:  npx vite preview --outDir ${result.out}   (or any static server), then open http://127.0.0.1:4173/` : `  open it with the app:  <app URL>/?model=<URL of ${result.out}>/`,
        ].join('\n') + '\n',
      );
    });
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
