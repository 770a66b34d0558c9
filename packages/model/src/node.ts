import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DfdError } from '@dfd/core';
import { ModelDirRefusedError, ModelFormatError, ModelWriteError } from './errors.js';
import { modelFromArtifacts, modelToArtifacts, type DfdModel } from './serialize.js';

/** Options of {@link saveModelDir}. */
export interface SaveModelDirOptions {
  labels?: string[];
  /**
   * Replace `dir` even when it holds files dfd did not write there (`dfd convert --overwrite`).
   * Default false: only a missing folder, an empty one or a dfd model folder is replaced.
   */
  overwrite?: boolean;
  /** The flag that sets {@link overwrite}, named in the refusal (default `--overwrite`). */
  overwriteFlag?: string;
}

/**
 * What is in `dir` that a dfd model folder does not hold: entries other than model.json and the
 * weight files its manifest lists (or weights.bin), and everything when model.json is not a dfd
 * model.json. Empty for a dfd model folder or an empty folder.
 */
export async function foreignModelDirEntries(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.length === 0) return [];
  type Json = { format?: unknown; weightsManifest?: Array<{ paths?: unknown }> } | null;
  const json = await (async (): Promise<Json> => {
    try {
      const st = await lstat(join(dir, 'model.json'));
      // A dfd model.json is small; a huge or special file there is not one we wrote.
      return st.isFile() && st.size < 64 * 1024 * 1024 ? (JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as Json) : null;
    } catch {
      return null;
    }
  })();
  if (!json || typeof json !== 'object' || json.format !== 'dfd-model') return entries.map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
  const ours = new Set(['model.json', 'weights.bin']);
  for (const g of Array.isArray(json.weightsManifest) ? json.weightsManifest : []) {
    for (const p of Array.isArray(g?.paths) ? (g.paths as unknown[]) : []) if (typeof p === 'string' && basename(p) === p) ours.add(p);
  }
  return entries.filter((e) => !(ours.has(e.name) && e.isFile())).map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
}

/**
 * Refuses (ModelDirRefusedError, nothing changed) to replace `target` unless it is missing, an
 * empty folder, or a model folder dfd wrote (model.json + its weight files, nothing else), or
 * `overwrite` is set. A regular file (or anything that is not a folder) is always refused.
 */
export async function checkModelDirReplaceable(target: string, options: { overwrite?: boolean; overwriteFlag?: string } = {}): Promise<void> {
  let st;
  try {
    st = await lstat(target);
  } catch {
    return; // missing: nothing to lose
  }
  if (!st.isDirectory()) {
    const what = st.isSymbolicLink() ? 'a symbolic link' : st.isFile() ? 'a file' : 'not a folder';
    throw new ModelDirRefusedError(target, `is ${what}, not a model folder; refusing to replace it. Choose another output folder (or move it away yourself).`);
  }
  if (options.overwrite) return;
  const foreign = await foreignModelDirEntries(target);
  if (foreign.length === 0) return;
  const list = `${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ` (+${foreign.length - 5} more)` : ''}`;
  throw new ModelDirRefusedError(
    target,
    `holds files dfd did not write (${list}); refusing to replace it, nothing was changed. Choose another output folder, or pass ${options.overwriteFlag ?? '--overwrite'} to replace the folder and everything in it.`,
    foreign,
  );
}

/**
 * Writes model.json + weights.bin into `dir` atomically: everything goes to a temporary sibling
 * folder first, which then replaces `dir` by rename, so a crash never leaves a half-written model.
 * Only a missing folder, an empty one or a dfd model folder is replaced, unless `overwrite`
 * ({@link checkModelDirReplaceable}); a regular file at `dir` is never replaced.
 */
export async function saveModelDir(model: DfdModel, dir: string, options: SaveModelDirOptions = {}): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  await checkModelDirReplaceable(target, options);
  await mkdir(parent, { recursive: true });
  const { modelJson, weights } = await modelToArtifacts(model, { labels: options.labels, source: target });
  const tmp = await mkdtemp(join(parent, `.${basename(target)}.tmp-`));
  // A failed write (ENOSPC...) says which folder and file; the system error alone names neither.
  const write = async (name: string, data: Uint8Array | string): Promise<void> => {
    try {
      await writeFile(join(tmp, name), data);
    } catch (err) {
      throw err instanceof DfdError ? err : new ModelWriteError(target, name, err as NodeJS.ErrnoException);
    }
  };
  try {
    await write('weights.bin', new Uint8Array(weights));
    await write('model.json', `${JSON.stringify(modelJson, null, 1)}\n`);
    let old: string | null = null;
    // Checked again just before the swap: the folder may have changed while the weights were written.
    await checkModelDirReplaceable(target, options);
    if (await exists(target)) {
      old = `${tmp}.old`;
      await rename(target, old);
    }
    await rename(tmp, target);
    if (old) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Loads a model saved by {@link saveModelDir} (or any dfd model.json + weight files). */
export async function loadModelDir(dir: string): Promise<DfdModel> {
  const jsonPath = join(dir, 'model.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(jsonPath, `cannot read model.json (${(err as Error).message}); pass a folder written by saveModelDir / 'dfd train'`);
  }
  type Manifest = Array<{ paths?: unknown; weights?: Array<{ shape?: unknown }> }>;
  const groups = (json as { weightsManifest?: Manifest } | null)?.weightsManifest;
  const paths = Array.isArray(groups) ? groups.flatMap((g) => (Array.isArray(g.paths) ? (g.paths as unknown[]) : [])) : [];
  const root = await realpath(dir).catch((err: Error) => {
    throw new ModelFormatError(dir, `cannot open the model folder (${err.message})`);
  });
  // Every weight file must be a plain file inside the model folder: no absolute path, no '..', no
  // symlink leading out of it, and the sizes must add up to what the manifest describes before
  // anything is read (a manifest naming /dev/zero or another model's weights is refused).
  const files: string[] = [];
  let total = 0;
  for (const p of paths) {
    if (typeof p !== 'string' || p === '' || p.includes('\0') || isAbsolute(p) || p.split(/[\\/]/).includes('..')) {
      throw new ModelFormatError(jsonPath, `weight path ${JSON.stringify(p)} must be a relative path inside the model folder (no '..', not absolute)`);
    }
    const file = join(dir, p);
    const real = await realpath(file).catch((err: Error) => {
      throw new ModelFormatError(file, `cannot read weights file (${err.message})`);
    });
    const rel = relative(root, real);
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      throw new ModelFormatError(jsonPath, `weight path ${JSON.stringify(p)} leads outside the model folder (to ${real}); weight files must live in ${root}`);
    }
    const st = await stat(real);
    if (!st.isFile()) throw new ModelFormatError(file, 'the weights path is not a regular file');
    total += st.size;
    files.push(real);
  }
  const expected = manifestBytes(groups);
  if (expected !== null && expected !== total) {
    throw new ModelFormatError(jsonPath, `the weight files hold ${total} bytes but the manifest describes ${expected}; a weights file is truncated, too long or belongs to another model`);
  }
  const buffers: ArrayBuffer[] = [];
  for (const file of files) {
    const b = await readFile(file).catch((err: Error) => {
      throw new ModelFormatError(file, `cannot read weights file (${err.message})`);
    });
    buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  }
  return modelFromArtifacts(json, buffers, jsonPath);
}

/** Bytes the manifest describes (float32), or null when its shapes are malformed (modelFromArtifacts then says why). */
function manifestBytes(groups: Array<{ weights?: Array<{ shape?: unknown }> }> | undefined): number | null {
  if (!Array.isArray(groups)) return null;
  let bytes = 0;
  for (const g of groups) {
    if (!Array.isArray(g.weights)) return null;
    for (const w of g.weights) {
      if (!Array.isArray(w?.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return null;
      bytes += 4 * (w.shape as number[]).reduce((a, b) => a * b, 1);
    }
  }
  return bytes;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
