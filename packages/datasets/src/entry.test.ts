import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as main from './index.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Every module reachable from `entry` through relative imports, with its bare imports. */
function graph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8');
    const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2]!);
    seen.set(file, specs.filter((s) => !s.startsWith('.')));
    for (const s of specs.filter((x) => x.startsWith('.'))) visit(join(dirname(file), s.replace(/\.js$/, '.ts')));
  };
  visit(join(HERE, entry));
  return seen;
}

describe('package entries', () => {
  it('the main entry reaches no Node-only module (browser-safe)', () => {
    const g = graph('index.ts');
    const bare = new Set([...g.values()].flat());
    // @dfd/backends is browser-safe too (its Node loaders are dynamic imports); the loader imports it only when no backend is active.
    expect([...bare].sort()).toEqual(['@dfd/backends', '@dfd/core', '@tensorflow/tfjs-core']);
    expect([...g.keys()].some((f) => f.includes('formats'))).toBe(false);
  });

  it('the node entry is where sharp (imported on first decode) and node: modules live', () => {
    const bare = new Set([...graph('node.ts').values()].flat());
    expect(bare.has('sharp')).toBe(true);
    expect([...bare].some((s) => s.startsWith('node:'))).toBe(true);
  });

  it('exports the contract the trainer builds against', () => {
    for (const name of ['DatasetRegistry', 'DATASET_REGISTRY', 'createLoader', 'disposeBatch', 'trainTransform', 'evalTransform', 'createSyntheticDataset', 'syntheticPlugin', 'IMAGENET_MEAN', 'DatasetFormatError']) {
      expect(main, name).toHaveProperty(name);
    }
  });
});
