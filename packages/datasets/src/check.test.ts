import { readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkImageHeaders, imageHeaderProblem } from './check.js';
import { decodeImageFile } from './node.js';
import type { Sample } from './types.js';
import { tempDir, writeImage, writeText } from './test-utils/fixtures.js';

let dir = '';
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('dfd-check-')));
afterEach(async () => cleanup());

const sample = (path: string): Sample => ({ id: path, image: { kind: 'file', path }, expression: 0 });

describe('image header check (issue 17)', () => {
  it('finds every empty, truncated or non-image file at once, and passes every good JPEG/PNG/WebP/GIF', async () => {
    const good = ['a.jpg', 'b.png'];
    for (const n of good) await writeImage(join(dir, n), { width: 24, height: 24 });
    await sharp(Buffer.alloc(24 * 24 * 3, 90), { raw: { width: 24, height: 24, channels: 3 } }).webp().toFile(join(dir, 'c.webp'));
    await sharp(Buffer.alloc(24 * 24 * 3, 90), { raw: { width: 24, height: 24, channels: 3 } }).gif().toFile(join(dir, 'd.gif'));
    await writeFile(join(dir, 'empty.jpg'), '');
    for (const [src, dst] of [['a.jpg', 'cut.jpg'], ['b.png', 'cut.png'], ['c.webp', 'cut.webp']]) {
      const bytes = await readFile(join(dir, src!));
      await writeFile(join(dir, dst!), bytes.subarray(0, Math.floor(bytes.length / 2)));
    }
    await writeText(join(dir, 'text.jpg'), 'this is not an image at all');
    const names = [...good, 'c.webp', 'd.gif', 'empty.jpg', 'cut.jpg', 'cut.png', 'cut.webp', 'text.jpg', 'missing.png'];
    const r = await checkImageHeaders(names.map((n) => sample(join(dir, n))));
    expect(r.files).toBe(names.length);
    expect(Object.fromEntries(r.problems.map((p) => [p.file.slice(dir.length + 1), p.reason]))).toEqual({
      'empty.jpg': 'empty file (0 bytes)',
      'cut.jpg': 'truncated JPEG (no end-of-image marker)',
      'cut.png': 'truncated PNG (no IEND chunk)',
      'cut.webp': expect.stringMatching(/^truncated WebP \(its header says \d+ bytes, the file has \d+\)$/),
      'text.jpg': 'not a JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF/HEIF, JPEG 2000, JPEG XL or SVG image (starts with 74 68 69 73 20 69 73 20)',
      'missing.png': 'cannot open (ENOENT)',
    });
    // What the check calls bad, the decoder cannot read either; what it passes, the decoder reads.
    for (const n of ['cut.jpg', 'cut.png', 'cut.webp', 'empty.jpg', 'text.jpg']) await expect(decodeImageFile(join(dir, n)), n).rejects.toThrow();
    for (const n of [...good, 'c.webp', 'd.gif']) expect((await decodeImageFile(join(dir, n))).width, n).toBe(24);
  });

  it('caches results by path, size and modification time; a changed file is read again', async () => {
    await writeImage(join(dir, 'a.jpg'));
    await writeImage(join(dir, 'b.jpg'));
    const cacheFile = join(dir, 'cache', 'image-check.json');
    const samples = [sample(join(dir, 'a.jpg')), sample(join(dir, 'b.jpg'))];
    expect(await checkImageHeaders(samples, { cacheFile })).toEqual({ files: 2, cached: 0, problems: [] });
    expect(await checkImageHeaders(samples, { cacheFile })).toEqual({ files: 2, cached: 2, problems: [] });
    await truncate(join(dir, 'b.jpg'), 40);
    await utimes(join(dir, 'b.jpg'), new Date(), new Date(Date.now() + 5000));
    const r = await checkImageHeaders(samples, { cacheFile });
    expect(r.cached).toBe(1);
    expect(r.problems).toEqual([{ file: join(dir, 'b.jpg'), reason: 'truncated JPEG (no end-of-image marker)' }]);
  });

  it('a missing image file is called a wrong path, not a bad image to remove from the dataset', async () => {
    const err = await decodeImageFile(join(dir, 'gone.png')).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/gone\.png: cannot decode image \(file not found.*\); check the path$/);
  });

  it('passes SVG and AVIF files, which sharp decodes too', async () => {
    await writeText(join(dir, 's.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><rect width="24" height="24" fill="#888"/></svg>');
    await writeText(join(dir, 'x.svg'), '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"/>');
    await sharp(Buffer.alloc(24 * 24 * 3, 90), { raw: { width: 24, height: 24, channels: 3 } }).avif().toFile(join(dir, 'a.avif'));
    // A file without an image extension may be for a custom decoder: only empty or truncated known formats count there.
    await writeText(join(dir, 'faces.npy'), 'NUMPY data of a custom plugin');
    await writeFile(join(dir, 'empty.npy'), '');
    const names = ['s.svg', 'x.svg', 'a.avif'];
    expect((await checkImageHeaders([...names, 'faces.npy', 'empty.npy'].map((n) => sample(join(dir, n))))).problems).toEqual([{ file: join(dir, 'empty.npy'), reason: 'empty file (0 bytes)' }]);
    for (const n of names) expect((await decodeImageFile(join(dir, n))).width, n).toBe(24);
  });

  it('imageHeaderProblem reads declared sizes (BMP) and tolerates padding after a JPEG end marker', () => {
    const bmp = new Uint8Array(16);
    bmp.set([0x42, 0x4d, 100, 0, 0, 0]);
    expect(imageHeaderProblem(bmp, new Uint8Array(0), 60)).toBe('truncated BMP (its header says 100 bytes, the file has 60)');
    expect(imageHeaderProblem(bmp, new Uint8Array(0), 100)).toBeNull();
    const jpegHead = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(imageHeaderProblem(jpegHead, new Uint8Array([1, 0xff, 0xd9, 0, 0, 0]), 5000)).toBeNull();
  });
});
