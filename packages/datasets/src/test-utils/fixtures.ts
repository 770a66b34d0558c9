import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';

/** A fresh temporary folder and a function that removes it. */
export async function tempDir(prefix = 'dfd-datasets-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes a text file, creating folders. */
export async function writeText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** Writes a tiny image (solid `value` grey or RGB) as JPEG or PNG by extension. */
export async function writeImage(path: string, options: { width?: number; height?: number; channels?: 1 | 3 | 4; value?: number } = {}): Promise<void> {
  const { width = 8, height = 8, channels = 3, value = 128 } = options;
  await mkdir(dirname(path), { recursive: true });
  const raw = Buffer.alloc(width * height * channels, value);
  let img = sharp(raw, { raw: { width, height, channels } });
  img = path.toLowerCase().endsWith('.png') ? img.png() : img.jpeg({ quality: 95 });
  await img.toFile(path);
}

/** A FER2013 pixel string of 48x48 values, all `v`. */
export function ferPixels(v: number): string {
  return new Array(48 * 48).fill(v).join(' ');
}
