import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGrid } from './spec.js';

// The grid files the repository ships for docs/results.md must expand as they stand: the same
// schema `dfd grid run` applies, so a reader's `dfd grid run tools/results/ferplus.yaml` does
// not fail on a field before the first cell.
const ferplus = fileURLToPath(new URL('../../../tools/results/ferplus.yaml', import.meta.url));

describe('tools/results/ferplus.yaml', () => {
  it('expands to base, att and att+eifp x seeds 0-2 on the frozen face-api trunk', () => {
    const plan = loadGrid(ferplus, '/tmp/dfd-ferplus-grid');
    expect(plan.eifes).toHaveLength(0);
    expect(plan.cells.map((c) => c.label)).toEqual([
      'variant=base seed=0',
      'variant=base seed=1',
      'variant=base seed=2',
      'variant=att seed=0',
      'variant=att seed=1',
      'variant=att seed=2',
      'variant=att+eifp seed=0',
      'variant=att+eifp seed=1',
      'variant=att+eifp seed=2',
    ]);
    for (const cell of plan.cells) {
      const c = cell.config as Record<string, any>;
      expect(c.source).toBe('ferplus:../shared/data/ferplus');
      expect(c.targets).toEqual([{ name: 'taiwanese', spec: 'folder:../shared/data/taiwanese-faces' }]);
      expect([c.backbone, c.freezeBackbone, c.epochs, c.selection]).toEqual(['faceapi:expression', true, 1, 'last']);
      expect(c.model).toMatchObject({ layout: 'faceapi', inputSize: 112 });
      expect(c.data).toMatchObject({ batchSize: 32, augment: false });
      expect(c.optimizer.lr.heads).toBe(5e-4);
      expect(c.baselines).toEqual(['faceapi:expression', 'human:emotion']);
      expect(c.eife).toEqual(['faceapi:recognition', 'faceapi:age-gender']);
      expect(c.eifeStandardize).toBe(true);
    }
    // Nine distinct cells: every (variant, seed) pair is its own run folder.
    expect(new Set(plan.cells.map((c) => c.hash)).size).toBe(9);
  });
});
