import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Dataset, Sample } from '@dfd/datasets';
import { checkImageHeaders, type ImageProblem } from '@dfd/datasets/node';
import { TrainingSetupError } from './errors.js';

/** What `data.badImages` / `--bad-images` asks for when an image file is empty, truncated or not an image. */
export type BadImagesMode = 'fail' | 'skip';

/** The run-folder file listing the images a run left out (`--bad-images skip`). */
export const SKIPPED_IMAGES_FILE = 'skipped-images.txt';

/** Where header checks are cached (by path, size and modification time): `$DFD_CACHE_DIR`, else `~/.cache/dfd`. */
export function imageCheckCacheFile(spec: string): string {
  const dir = process.env.DFD_CACHE_DIR ?? join(homedir(), '.cache', 'dfd');
  return join(dir, `image-check-${createHash('sha1').update(spec).digest('hex').slice(0, 16)}.json`);
}

/**
 * Checks the header and end of every image file of `dataset` (all splits) before training, and
 * reports every bad one at once: with `fail`, a {@link TrainingSetupError} listing them; with
 * `skip`, the dataset without them and the list (write it with {@link writeSkippedImages}).
 */
export async function screenImages(dataset: Dataset, mode: BadImagesMode, spec: string): Promise<{ dataset: Dataset; skipped: ImageProblem[] }> {
  const all = Object.values(dataset.splits).flatMap((s) => s ?? []);
  const { files, problems } = await checkImageHeaders(all, { cacheFile: imageCheckCacheFile(spec) });
  if (!problems.length) return { dataset, skipped: [] };
  if (mode === 'fail') {
    const shown = problems.slice(0, 50).map((p) => `  ${p.file}: ${p.reason}`);
    throw new TrainingSetupError(
      `${problems.length} of ${files} image file(s) of ${spec} cannot be read (nothing was trained):\n${shown.join('\n')}` +
        `${problems.length > 50 ? `\n  ... and ${problems.length - 50} more` : ''}\nReplace or remove them, or pass --bad-images skip (data.badImages: skip) to train without them.`,
    );
  }
  const bad = new Set(problems.map((p) => p.file));
  const keep = (s: Sample) => !(s.image.kind === 'file' && bad.has(s.image.path));
  const splits = Object.fromEntries(Object.entries(dataset.splits).map(([k, v]) => [k, v?.filter(keep)])) as Dataset['splits'];
  return { dataset: { ...dataset, splits }, skipped: problems };
}

/** Writes the skipped images (`file<TAB>reason` per line) into the run folder. */
export function writeSkippedImages(out: string, skipped: ImageProblem[]): void {
  if (skipped.length) writeFileSync(join(out, SKIPPED_IMAGES_FILE), skipped.map((p) => `${p.file}\t${p.reason}\n`).join(''));
}
