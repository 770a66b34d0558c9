import { describe, expect, it } from 'vitest';
import { meanAccuracy, summarise } from './evaluate.js';
import { confusionSvg, lineChartSvg, resultsTable } from './report.js';

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
