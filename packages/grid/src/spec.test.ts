import { describe, expect, it } from 'vitest';
import { GridTooLargeError, configHash, expandGrid } from './spec.js';

const base = {
  source: 'synthetic:studio',
  variant: 'att',
  targets: { wild: 'synthetic:wild' },
  epochs: 2,
  model: { width: 0.125, inputSize: 32 },
  data: { batchSize: 16, limit: 96 },
  backend: 'cpu',
};

describe('grid files', () => {
  it('expands the cartesian product of the axes into cells named by config hash', () => {
    const plan = expandGrid({ base, axes: { variant: ['base', 'att', 'att+eifp'], seed: [0, 1] }, eife: [{ dataset: 'synthetic:studio', factors: ['identity'] }] }, '/tmp/grid-x');
    expect(plan.cells).toHaveLength(6);
    expect(plan.cells.map((c) => c.label)).toEqual(['variant=base seed=0', 'variant=base seed=1', 'variant=att seed=0', 'variant=att seed=1', 'variant=att+eifp seed=0', 'variant=att+eifp seed=1']);
    expect(new Set(plan.cells.map((c) => c.hash)).size).toBe(6);
    for (const c of plan.cells) {
      expect(c.hash).toMatch(/^[0-9a-f]{12}$/);
      expect(c.dir).toBe(`/tmp/grid-x/cells/${c.hash}`);
      expect(c.config.out).toBe(c.dir);
      expect(c.config.console).toBe(false);
    }
    // The EIFE inherits the base's epochs, model size and data; att+eifp cells need it.
    expect(plan.eifes).toHaveLength(1);
    const e = plan.eifes[0]!;
    expect(e.config).toMatchObject({ dataset: 'synthetic:studio', factors: ['identity'], epochs: 2, model: { width: 0.125, inputSize: 32 }, data: { batchSize: 16, limit: 96 }, backend: 'cpu', out: `/tmp/grid-x/eife/${e.hash}` });
    const eifp = plan.cells.filter((c) => c.axes.variant === 'att+eifp');
    for (const c of eifp) {
      expect(c.needs).toEqual([e.hash]);
      expect(c.config.eife).toEqual([e.dir]);
    }
    expect(plan.cells.filter((c) => c.axes.variant !== 'att+eifp').every((c) => c.needs.length === 0)).toBe(true);
    expect(plan.cells[2]!.config).toMatchObject({ variant: 'att', seed: 0, model: { width: 0.125, inputSize: 32 } });
  });

  it('hashes do not depend on key order, the grid folder or output-only fields', () => {
    const a = expandGrid({ base, axes: { seed: [3] } }, '/a').cells[0]!;
    const reordered = { variant: 'att', backend: 'cpu', data: { limit: 96, batchSize: 16 }, model: { inputSize: 32, width: 0.125 }, epochs: 2, targets: { wild: 'synthetic:wild' }, source: 'synthetic:studio', keepCheckpoints: 5 };
    const b = expandGrid({ base: reordered, axes: { seed: [3] } }, '/b').cells[0]!;
    expect(b.hash).toBe(a.hash);
    expect(configHash({ ...a.config, console: true, out: '/elsewhere' })).toBe(a.hash);
    expect(configHash({ ...a.config, seed: 4 })).not.toBe(a.hash);
    // Extending an axis keeps the hashes of the cells already there.
    const wider = expandGrid({ base, axes: { seed: [3, 4] } }, '/a');
    expect(wider.cells[0]!.hash).toBe(a.hash);
  });

  it('sets dotted axis paths inside nested config objects', () => {
    const plan = expandGrid({ base, axes: { 'model.width': [0.0625, 0.125], 'optimizer.lr.heads': [0.001] } }, '/g');
    expect(plan.cells.map((c) => (c.config.model as { width: number }).width)).toEqual([0.0625, 0.125]);
    expect(plan.cells[0]!.config.optimizer).toMatchObject({ lr: { heads: 0.001 } });
    expect((plan.cells[0]!.config.model as { inputSize: number }).inputSize).toBe(32);
  });

  it('names every bad field by its path in the grid file', () => {
    const bad = () =>
      expandGrid(
        {
          base: { ...base, out: 'runs/x', model: { width: 9, inputSize: 32 } },
          axes: { variant: ['att', 'fancy'], seed: [0] },
        },
        '/g',
        'grid.yaml',
      );
    expect(bad).toThrow(/invalid grid.yaml:/);
    expect(bad).toThrow(/base\.out: leave it out/);
    const e2 = () => expandGrid({ base: { ...base, model: { width: 9, inputSize: 32 } }, axes: { variant: ['att', 'fancy'] } }, '/g', 'grid.yaml');
    expect(e2).toThrow(/base\.model\.width: Too big/);
    expect(e2).toThrow(/axes\.variant\[1\]: Invalid option/);
    expect(() => expandGrid({ base, axes: { seed: [0, 0] } }, '/g')).toThrow(/axes\.seed: values repeat/);
    expect(() => expandGrid({ base, axes: { variant: ['att+eifp'] } }, '/g')).toThrow(/needs stage-1 extractors/);
    expect(() => expandGrid({ base, eife: [{ dataset: 'synthetic:studio' }] }, '/g')).toThrow(/eife\.0\.factors:/);
    expect(() => expandGrid({ base, axes: { 'bad path': [1] } }, '/g')).toThrow(/axes\.bad path: an axis is a dotted config path/);
    expect(() => expandGrid({ axes: {} }, '/g')).toThrow(/base: /);
    expect(() => expandGrid({ base, axes: { backend: ['cpu', 'wasm'] } }, '/g')).toThrow(/axes\.backend: every cell/);
  });
});

describe('grid size and targets (#24 cases 7, 14)', () => {
  it('refuses a grid whose axes multiply past the cap before expanding it, naming the axes, their sizes and the cap', () => {
    // 3 axes of 130 values: 2,197,000 cells; the old code built every config (GBs) before failing or running.
    const values = Array.from({ length: 130 }, (_, i) => i);
    const huge = { base, axes: { seed: values, 'optimizer.lr': values.map((v) => (v + 1) / 1e4), 'data.batchSize': values.map((v) => v + 1) } };
    const started = Date.now();
    let err: unknown;
    try {
      expandGrid(huge, '/g', 'big.yaml');
    } catch (e) {
      err = e;
    }
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(GridTooLargeError);
    expect((err as GridTooLargeError).code).toBe('E_CONFIG');
    expect((err as Error).message).toMatch(/invalid big\.yaml:\n {2}axes: seed \(130\) x optimizer\.lr \(130\) x data\.batchSize \(130\) = 2197000 cells, over the cap of 10000/);
    expect((err as GridTooLargeError).cells).toBe(2_197_000);
    // The cap is an option: a small grid under a smaller cap fails, and passes under a larger one.
    expect(() => expandGrid({ base, axes: { seed: [0, 1, 2] } }, '/g', 'g.yaml', { maxCells: 2 })).toThrow(/seed \(3\) = 3 cells, over the cap of 2/);
    expect(expandGrid({ base, axes: { seed: [0, 1, 2] } }, '/g', 'g.yaml', { maxCells: 3 }).cells).toHaveLength(3);
  });

  it('refuses a grid whose base has no targets before any cell trains, naming the field', () => {
    const { targets: _t, ...noTargets } = base as Record<string, unknown>;
    expect(() => expandGrid({ base: noTargets, axes: { seed: [0, 1] } }, '/g', 'g.yaml')).toThrow(/invalid g\.yaml:\n {2}base\.targets: no targets/);
    expect(() => expandGrid({ base: { ...base, targets: {} }, axes: { seed: [0] } }, '/g')).toThrow(/base\.targets: no targets/);
    expect(() => expandGrid({ base: noTargets, axes: { targets: [{ wild: 'synthetic:wild' }, {}] } }, '/g')).toThrow(/axes\.targets\[1\]: no targets/);
  });
});
