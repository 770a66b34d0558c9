import { describe, expect, it } from 'vitest';
import { meanAccuracy, summarise } from './evaluate.js';
import { confusionSvg, lineChartSvg, niceTicks, resultsTable } from './report.js';

describe('evaluation summaries and reports', () => {
  it('summarise: accuracy, per-class accuracy, confusion[true][pred]; labels -1 skipped', () => {
    const r = summarise('t', [0, 0, 1, 1, 2, -1], [0, 1, 1, 1, 0, 2], 3);
    expect(r.count).toBe(5);
    expect(r.accuracy).toBeCloseTo(3 / 5, 12);
    expect(r.confusion).toEqual([[1, 1, 0], [0, 2, 0], [1, 0, 0]]);
    expect(r.perClassAccuracy).toEqual([0.5, 1, 0]);
    expect(meanAccuracy([r, { ...r, accuracy: 0.2 }])).toBeCloseTo(0.4, 12);
  });

  it('resultsTable: the paper layout, percentages with two decimals, mean last', () => {
    const a = summarise('ferplus', [0, 1], [0, 1], 7);
    const b = summarise('sfew', [0, 1, 2], [0, 0, 0], 7);
    const table = resultsTable([{ label: 'att+eifp', source: 'RAF-DB', results: [a, b], mean: meanAccuracy([a, b]) }]);
    expect(table.split('\n')).toEqual([
      '| method | source | ferplus | sfew | mean |',
      '|---|---|---:|---:|---:|',
      '| att+eifp | RAF-DB | 100.00 | 33.33 | 66.67 |',
    ]);
  });

  it('SVG plots contain the data', () => {
    const svg = lineChartSvg('loss', [{ name: 'loss', values: [2, 1, 0.5] }]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect((svg.match(/<circle /g) ?? []).length).toBe(3);
    const c = confusionSvg(summarise('wild', [0, 0, 1], [0, 1, 1], 2), ['a', 'b']);
    expect(c).toContain('wild: 66.67% (n=3)');
    expect((c.match(/<rect x=/g) ?? []).length).toBe(4);
  });
});

describe('report figures (issue 27 item 8)', () => {
  it('niceTicks: steps of 1/2/2.5/5 x 10^k, a minimum span for flat curves, no negative ticks for non-negative data', () => {
    expect(niceTicks(0, 1).ticks).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(0.3, 1.9).ticks).toEqual([0, 0.5, 1, 1.5, 2]);
    // Accuracy stuck at 0.61: not zoomed to 0.605..0.615.
    const flat = niceTicks(0.6099, 0.6101);
    expect(flat.ticks[flat.ticks.length - 1]! - flat.ticks[0]!).toBeGreaterThanOrEqual(0.06 - 1e-9);
    for (const t of flat.ticks) expect(Math.round(t / flat.step) * flat.step).toBeCloseTo(t, 9);
    expect(niceTicks(0.001, 0.002).ticks[0]).toBe(0);
    expect(niceTicks(-3, 7).ticks[0]).toBeLessThanOrEqual(-3);
  });

  it('lineChartSvg: one epoch is one tick labelled 1 (no epoch 2); a series equal to an earlier one is dashed and named', () => {
    const one = lineChartSvg('loss', [{ name: 'loss', values: [1.2] }]);
    const xLabels = [...one.matchAll(/<text x="[\d.]+" y="296" text-anchor="middle">(\d+)<\/text>/g)].map((m) => m[1]);
    expect(xLabels).toEqual(['1']);
    const base = lineChartSvg('loss', [{ name: 'loss', values: [2, 1] }, { name: 'cls', values: [2, 1] }]);
    expect(base).toContain('cls (= loss)');
    expect((base.match(/<polyline[^>]*stroke-dasharray/g) ?? []).length).toBe(1);
    const ticks = [...lineChartSvg('acc', [{ name: 'accuracy', values: [0.61, 0.61] }]).matchAll(/text-anchor="end">([\d.]+)</g)].map((m) => Number(m[1]));
    expect(ticks[ticks.length - 1]! - ticks[0]!).toBeGreaterThanOrEqual(0.06 - 1e-9);
  });

  it('confusionSvg: "true" and "predicted" axes, row shares in the cells and as the shading', () => {
    // 9 of class 0 right, 1 wrong; 1 of class 1 right: raw counts 9 vs 1, shares 90 % vs 100 %.
    const c = confusionSvg(summarise('wild', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], 2), ['neutral', 'happiness']);
    expect(c).toMatch(/>true<\/text>/);
    expect(c).toMatch(/>predicted<\/text>/);
    expect(c).toContain('>90%<');
    expect(c).toContain('>100%<');
    const fills = [...c.matchAll(/fill="rgb\((\d+),/g)].map((m) => Number(m[1]));
    // Cells in order [0][0], [0][1], [1][0], [1][1]: the 1-count diagonal cell is shaded darkest (100 %).
    expect(Math.min(...fills)).toBe(fills[3]);
    expect(c).toContain('rotate(-45');
  });
});

describe('report.md', () => {
  it('gives each target its n and says which split was evaluated', async () => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeRunReport } = await import('./report.js');
    const dir = mkdtempSync(join(tmpdir(), 'dfd-report-'));
    const wild = summarise('wild', [0, 1, 1], [0, 1, 0], 7);
    await writeRunReport(dir, { stage: 'dfd', variant: 'base', source: 's', selection: 'last', epochsDone: 1, status: 'completed', results: [wild], mean: wild.accuracy, history: [{ epoch: 1, loss: 1, cls: 1 }], config: {}, seconds: 1 });
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('Images evaluated per target (its test split, else all of it): wild n=3.');
  });
});
