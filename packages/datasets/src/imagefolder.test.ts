import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createNodeDatasetRegistry } from './node.js';

describe('imagefolder: (alias of folder:, the name torchvision users know)', () => {
  it('reads the same class-folder dataset as folder:', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dfd-imagefolder-'));
    try {
      for (const [cls, n] of [['happy', 2], ['sad', 1]] as const) {
        await mkdir(join(dir, 'train', cls), { recursive: true });
        for (let i = 0; i < n; i++) await writeFile(join(dir, 'train', cls, `${i}.png`), await sharp(Buffer.alloc(12, 9), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer());
      }
      const registry = createNodeDatasetRegistry();
      const a = await registry.resolve(`imagefolder:${dir}`);
      const b = await registry.resolve(`folder:${dir}`);
      const view = (ds: typeof a) => ds.splits.train!.map((s) => [s.id, s.expression]);
      expect(view(a)).toEqual(view(b));
      expect(view(a)).toHaveLength(3);
      expect(registry.get('imagefolder')!.description).toMatch(/^alias of folder: class folders/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
