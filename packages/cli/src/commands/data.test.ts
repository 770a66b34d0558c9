import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { main } from '../main.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dfd-cli-data-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  const code = await main(['node', 'dfd', ...args]);
  vi.restoreAllMocks();
  return { code, out, err };
}

describe('dfd data inspect', () => {
  it('reports counts per split and class, sampled sizes and problems (--json)', async () => {
    const img = sharp(Buffer.alloc(6 * 5 * 3, 90), { raw: { width: 6, height: 5, channels: 3 } }).jpeg();
    for (const [split, cls, n] of [['train', 'happy', 3], ['train', 'angry', 1], ['train', 'contempt', 2], ['test', 'neutral', 1]] as const) {
      await mkdir(join(dir, split, cls), { recursive: true });
      for (let i = 0; i < n; i++) await img.clone().toFile(join(dir, split, cls, `${i}.jpg`));
    }
    await writeFile(join(dir, 'test', 'neutral', 'broken.jpg'), 'nope');
    const { code, out } = await run(['data', 'inspect', `folder:${dir}`, '--json', '--sample', '10']);
    expect(code).toBe(0);
    const r = JSON.parse(out);
    expect(r.splits.train.total).toBe(4);
    expect(r.splits.train.expression).toMatchObject({ happiness: 3, anger: 1, surprise: 0 });
    expect(r.splits.test.total).toBe(2);
    expect(r.imageSizes).toEqual({ '6x5': 5 });
    const kinds = r.problems.map((p: { kind: string }) => p.kind).sort();
    expect(kinds).toEqual(['missing-class', 'missing-class', 'unknown-class', 'unreadable-image']);
    expect(r.problems.find((p: { kind: string }) => p.kind === 'unknown-class').count).toBe(2);
  });

  it('checks the header of every image, not only the sampled ones (issue 17)', async () => {
    const img = sharp(Buffer.alloc(6 * 5 * 3, 90), { raw: { width: 6, height: 5, channels: 3 } }).png();
    await mkdir(join(dir, 'train', 'happy'), { recursive: true });
    for (let i = 0; i < 30; i++) await img.clone().toFile(join(dir, 'train', 'happy', `${String(i).padStart(2, '0')}.png`));
    await writeFile(join(dir, 'train', 'happy', '17b.png'), '');
    const { code, out } = await run(['data', 'inspect', `folder:${join(dir, 'train')}`, '--json', '--sample', '2']);
    expect(code).toBe(0);
    const r = JSON.parse(out);
    expect(r.sampled).toBe(2);
    expect(r.headerChecked).toBe(31);
    expect(r.problems).toContainEqual({ kind: 'bad-image', message: `1 of 31 image file(s) cannot be read: ${join(dir, 'train', 'happy', '17b.png')}: empty file (0 bytes)`, count: 1 });
    const table = await run(['data', 'inspect', `folder:${join(dir, 'train')}`, '--sample', '2']);
    expect(table.out).toMatch(/headers checked: 31 image file\(s\)/);
    expect(table.out).not.toMatch(/problems: none/);
  });

  it('prints a table for synthetic data and a typed error for a bad folder', async () => {
    const ok = await run(['data', 'inspect', 'synthetic:studio?train=14&test=7&size=16', '--sample', '2']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/split\s+total\s+surprise/);
    expect(ok.out).toMatch(/factor pose \(5 classes\)/);
    expect(ok.out).toMatch(/16x16 x4/);
    const bad = await run(['data', 'inspect', `rafdb:${join(dir, 'missing')}`]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^dfd: .*missing.*folder not found/);
  });

  it('loads --dataset-plugin modules and lists plugins', async () => {
    await writeFile(
      join(dir, 'p.mjs'),
      `export const datasetPlugin = { name: 'mine', description: 'my data', labels: { expression: true, factors: [] },
        async load() { return { name: 'mine:x', plugin: 'mine', hasExpression: true, warnings: [], splits: { test: [
          { id: 'a', expression: 6, image: { kind: 'pixels', width: 2, height: 3, channels: 1, data: new Uint8Array(6) } }] } }; } };`,
    );
    const list = await run(['data', 'plugins', '--dataset-plugin', join(dir, 'p.mjs')]);
    expect(list.out).toMatch(/^mine\s+my data$/m);
    expect(list.out).toMatch(/^rafdb\s/m);
    const r = await run(['data', 'inspect', 'mine:x', '--json', '--dataset-plugin', join(dir, 'p.mjs')]);
    expect(JSON.parse(r.out).splits.test.expression.neutral).toBe(1);
    expect(JSON.parse(r.out).imageSizes).toEqual({ '2x3': 1 });
  });
});
