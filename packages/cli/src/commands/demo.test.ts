import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../main.js';

describe('dfd demo --quick', () => {
  it('runs both stages and the three variants and prints the table', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-demo-'));
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
      chunks.push(String(c));
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    try {
      code = await main(['node', 'dfd', 'demo', '--quick', '--no-console', '--out', out]);
    } finally {
      spy.mockRestore();
      err.mockRestore();
    }
    expect(code).toBe(0);
    const text = chunks.join('');
    expect(text).toMatch(/\| method \| source \| wild \| sketch \| lowlight \| mean \|/);
    // It ends with the next step, a command that runs on the model it just wrote.
    expect(text).toContain(`dfd predict --model ${join(out, 'att-eifp', 'model')} --detect photo.jpg`);
    for (const v of ['base', 'att', 'att\\+eifp']) expect(text).toMatch(new RegExp(`\\| ${v} \\| studio \\| [0-9.]+ \\| [0-9.]+ \\| [0-9.]+ \\| [0-9.]+ \\|`));
    const demo = JSON.parse(readFileSync(join(out, 'demo.json'), 'utf8'));
    expect(demo.rows.map((r: { label: string }) => r.label)).toEqual(['base', 'att', 'att+eifp']);
    for (const row of demo.rows) {
      const accs = row.results.map((r: { accuracy: number }) => r.accuracy);
      expect(row.mean).toBeCloseTo(accs.reduce((a: number, b: number) => a + b, 0) / 3, 12);
      for (const r of row.results) expect(r.count).toBe(14);
    }
    expect(Object.keys(demo.eifeAccuracy)).toEqual(['eife-identity', 'eife-appearance']);
    expect(Object.keys(demo.eifeAccuracy['eife-appearance'])).toEqual(['age', 'skin', 'illumination']);
    for (const f of ['eife-identity/model/model.json', 'att-eifp/report.md', 'att-eifp/checkpoints/latest', 'base/curves-loss.png']) expect(existsSync(join(out, f)), f).toBe(true);
  });

  it('dfd train reports a bad config field by its path', async () => {
    const errs: string[] = [];
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => {
      errs.push(String(c));
      return true;
    });
    let code: number;
    try {
      code = await main(['node', 'dfd', 'train', '--source', 'synthetic:studio', '--out', join(tmpdir(), 'x'), '--epochs', '0', '--variant', 'huge']);
    } finally {
      err.mockRestore();
    }
    expect(code).toBe(1);
    const text = errs.join('');
    expect(text).toMatch(/dfd: invalid config:/);
    expect(text).toMatch(/ {2}variant: /);
    expect(text).toMatch(/ {2}epochs: /);
  });
});
