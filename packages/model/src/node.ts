import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ModelFormatError } from './errors.js';
import { modelFromArtifacts, modelToArtifacts, type DfdModel } from './serialize.js';

/**
 * Writes model.json + weights.bin into `dir` atomically: everything goes to a temporary sibling
 * folder first, which then replaces `dir` by rename, so a crash never leaves a half-written model.
 */
export async function saveModelDir(model: DfdModel, dir: string, options: { labels?: string[] } = {}): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const { modelJson, weights } = await modelToArtifacts(model, options);
  const tmp = await mkdtemp(join(parent, `.${basename(target)}.tmp-`));
  try {
    await writeFile(join(tmp, 'weights.bin'), new Uint8Array(weights));
    await writeFile(join(tmp, 'model.json'), `${JSON.stringify(modelJson, null, 1)}\n`);
    let old: string | null = null;
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
  const groups = (json as { weightsManifest?: Array<{ paths?: string[] }> }).weightsManifest;
  const paths = Array.isArray(groups) ? groups.flatMap((g) => (Array.isArray(g.paths) ? g.paths : [])) : [];
  const buffers: ArrayBuffer[] = [];
  for (const p of paths) {
    const b = await readFile(join(dir, p)).catch((err: Error) => {
      throw new ModelFormatError(join(dir, p), `cannot read weights file (${err.message})`);
    });
    buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  }
  return modelFromArtifacts(json, buffers, jsonPath);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
