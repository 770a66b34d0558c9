import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gridReport, reportMarkdown, reportSvg, writeGridReport } from './report.js';
import { expandGrid } from './spec.js';
import { prepareGrid, writeFailed } from './store.js';

/** A grid folder whose cells hold report.json files with given accuracies (what dfd train writes). */
function fakeGrid(acc: Record<string, [number, number]>, failing: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-report-'));
  const plan = expandGrid({ base: { source: 'synthetic:studio', targets: { wild: 'synthetic:wild', sketch: 'synthetic:sketch' }, backend: 'cpu' }, axes: { variant: ['base', 'att'], seed: [0, 1, 2] } }, dir);
  prepareGrid(plan);
  for (const c of plan.cells) {
    if (failing.includes(c.label)) {
      writeFailed(c.dir, "dataset folder:/nope: no such folder '/nope'", 2);
      continue;
    }
    const [wild, sketch] = acc[c.label]!;
    writeFileSync(join(c.dir, 'report.json'), JSON.stringify({ stage: 'dfd', variant: c.axes.variant, source: 'studio', status: 'completed', results: [{ target: 'wild', accuracy: wild }, { target: 'sketch', accuracy: sketch }], mean: (wild + sketch) / 2, seconds: 1 }));
  }
  return { dir, plan };
}

const ACC: Record<string, [number, number]> = {
  'variant=base seed=0': [0.3, 0.5],
  'variant=base seed=1': [0.4, 0.5],
  'variant=base seed=2': [0.5, 0.5],
  'variant=att seed=0': [0.35, 0.6],
  'variant=att seed=1': [0.5, 0.55],
  'variant=att seed=2': [0.5, 0.65],
};

describe('grid report', () => {
  it('aggregates over seeds with t intervals and pairs variants on the same seed', () => {
    const { dir } = fakeGrid(ACC);
    const r = gridReport(dir);
    expect(r.targets).toEqual(['wild', 'sketch']);
    expect(r.counts).toEqual({ done: 6, failed: 0, pending: 0, invalid: 0 });
    expect(r.groups.map((g) => g.method)).toEqual(['base', 'att']);
    const base = r.groups[0]!;
    expect(base.source).toBe('studio');
    expect(base.targets.wild!.mean).toBeCloseTo(0.4, 12);
    expect(base.targets.wild!.std).toBeCloseTo(0.1, 12);
    expect(base.targets.wild!.ci95).toBeCloseTo((4.30265273 * 0.1) / Math.sqrt(3), 8);
    expect(base.targets.sketch!.std).toBe(0);
    expect(base.mean.mean).toBeCloseTo(0.45, 12);
    expect(base.perSeed.map((p) => p.seed)).toEqual([0, 1, 2]);
    // att - base per seed: wild 0.05, 0.10, 0.00; sketch 0.10, 0.05, 0.15.
    expect(r.differences).toHaveLength(1);
    const d = r.differences[0]!;
    expect(d.label).toBe('att − base');
    expect(d.targets.wild!.mean).toBeCloseTo(0.05, 12);
    expect(d.targets.wild!.std).toBeCloseTo(0.05, 12);
    expect(d.targets.sketch!.mean).toBeCloseTo(0.1, 12);
    expect(d.mean.mean).toBeCloseTo(0.075, 12);
    // The per-seed mean differences are 0.075 on every seed: no spread, a zero-width interval.
    expect(d.mean.std).toBeCloseTo(0, 12);
    expect(d.mean.ci95).toBeCloseTo(0, 12);
    const md = reportMarkdown(r);
    expect(md).toContain('| method | source | wild | sketch | mean | n |');
    expect(md).toContain(`| base | studio | 40.00 ± ${((4.30265273 * 10) / Math.sqrt(3)).toFixed(2)} | 50.00 ± 0.00 | 45.00 ± `);
    expect(md).toMatch(/\| att − base \| \+5\.00 \[-7\.42, \+17\.42\] \| \+10\.00 \[/);
    const svg = reportSvg(r);
    expect(svg.match(/<circle /g)).toHaveLength(6);
    expect(svg.match(/<rect x=/g)).toHaveLength(2);
  });

  it('lists failed cells with their error and leaves them out of the statistics', () => {
    const { dir } = fakeGrid(ACC, ['variant=att seed=2']);
    const r = writeGridReport(dir);
    expect(r.counts).toEqual({ done: 5, failed: 1, pending: 0, invalid: 0 });
    expect(r.groups[1]!.mean.n).toBe(2);
    expect(r.groups[1]!.missing).toEqual(['variant=att seed=2']);
    expect(r.differences[0]!.seeds).toEqual([0, 1]);
    expect(r.cells.find((c) => c.status === 'failed')!.error).toMatch(/no such folder/);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/\| variant=att seed=2 \([0-9a-f]{12}\) \| failed \| dataset folder:\/nope: no such folder/);
    expect(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).counts.failed).toBe(1);
    expect(readFileSync(join(dir, 'report.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('counts cells without a result as pending', () => {
    const { dir } = fakeGrid(ACC);
    const empty = join(dir, 'cells', 'deadbeef0000');
    mkdirSync(empty, { recursive: true });
    const index = JSON.parse(readFileSync(join(dir, 'grid.json'), 'utf8'));
    index.cells.push({ hash: 'deadbeef0000', label: 'variant=att seed=3', axes: { variant: 'att', seed: 3 }, needs: [] });
    writeFileSync(join(dir, 'grid.json'), JSON.stringify(index));
    expect(gridReport(dir).counts).toEqual({ done: 6, failed: 0, pending: 1, invalid: 0 });
  });

  it('validates every cell report: out-of-range, non-number, missing and cut ones are invalid, named by file and field, and left out of the means (#24 case 12)', () => {
    const { dir, plan } = fakeGrid(ACC);
    const cell = (label: string) => plan.cells.find((c) => c.label === label)!;
    const put = (label: string, text: string) => writeFileSync(join(cell(label).dir, 'report.json'), text);
    const good = (wild: unknown, sketch: unknown = 0.5) => ({ stage: 'dfd', source: 'studio', status: 'completed', results: [{ target: 'wild', accuracy: wild }, { target: 'sketch', accuracy: sketch }], mean: 0.5, seconds: 1 });
    put('variant=base seed=0', JSON.stringify(good(1.5)));
    put('variant=base seed=1', JSON.stringify(good('0.4')));
    put('variant=att seed=0', JSON.stringify({ ...good(0.3), results: undefined }));
    put('variant=att seed=1', JSON.stringify(good(0.5)).slice(0, 40));
    put('variant=att seed=2', JSON.stringify({ ...good(0.5), results: [{ target: 'wild', accuracy: 0.5 }] }));
    const r = writeGridReport(dir);
    expect(r.counts).toEqual({ done: 1, failed: 0, pending: 0, invalid: 5 });
    const err = (label: string) => r.cells.find((c) => c.label === label)!.error!;
    const file = (label: string) => join(cell(label).dir, 'report.json');
    expect(r.cells.find((c) => c.label === 'variant=base seed=0')!.status).toBe('invalid');
    expect(err('variant=base seed=0')).toMatch(new RegExp(`^${file('variant=base seed=0').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: results\\.0\\.accuracy: Too big`));
    expect(err('variant=base seed=1')).toMatch(/report\.json: results\.0\.accuracy: Invalid input: expected number/);
    expect(err('variant=att seed=0')).toMatch(/report\.json: results: Invalid input: expected array/);
    expect(err('variant=att seed=1')).toMatch(/report\.json: not valid JSON \(cut short\?\)/);
    expect(err('variant=att seed=2')).toMatch(/report\.json: results: no result for target 'sketch'/);
    // 1.5 is not averaged in: base's only valid seed is seed=2 (wild 0.5).
    expect(r.groups[0]!.mean.n).toBe(1);
    expect(r.groups[0]!.targets.wild!.mean).toBeCloseTo(0.5, 12);
    expect(r.groups[1]!.mean.n).toBe(0);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/5 cells have an invalid report\.json \(listed below\): left out of every mean/);
    expect(md).toMatch(/\| variant=base seed=0 \([0-9a-f]{12}\) \| invalid \| .*results\.0\.accuracy: Too big/);
  });
});
