import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test-utils/run-cli.js';

const GRID = `
base:
  source: "synthetic:studio?train=32&test=0&size=16"
  targets: { wild: "synthetic:wild?train=0&test=16&size=16" }
  epochs: 1
  model: { width: 0.0625, inputSize: 16 }
  data: { batchSize: 16, augment: false }
  backend: cpu
axes:
  variant: [base, att]
  seed: [0, 1]
`;

const root = resolve(import.meta.dirname, '../../../..');

function events(dir: string): Array<{ type: string; epoch?: number; startEpoch?: number; status?: string }> {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}

/** `dfd grid run` as its own process (its --jobs children are `dfd grid cell` processes); `onStart` sees the child. */
function gridRun(args: string[], onStart?: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', 'packages/cli/src/bin.ts', 'grid', 'run', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  onStart?.(child);
  return new Promise((r) => child.on('exit', (code) => r({ code, stderr })));
}

describe('dfd grid', () => {
  it('run (in process), status and report over a 4-cell grid; a second run skips every finished cell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-cli-grid-'));
    const file = join(dir, 'grid.yaml');
    writeFileSync(file, GRID);
    const out = join(dir, 'out');
    const run = await runCli(['grid', 'run', file, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('dfd grid: 4 cells in');
    expect(run.stderr).toContain('dfd grid: 4 completed, 0 already done, 0 failed, 0 stopped');
    expect(run.stdout).toMatch(/\| base \| .* \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ ± [0-9.]+ \| 2 \|/);
    expect(run.stdout).toMatch(/\| att − base \| [-+][0-9.]+ \[[-+][0-9.]+, [-+][0-9.]+\] \|/);
    const status = await runCli(['grid', 'status', out]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^waiting 0 · running 0 · done 4 · failed 0 · ETA 0s/);
    expect(status.stdout.match(/ done +epoch 1\/1 /g)).toHaveLength(4);
    const json = await runCli(['grid', 'report', out, '--json']);
    const report = JSON.parse(json.stdout);
    expect(report.counts).toEqual({ done: 4, failed: 0, pending: 0, invalid: 0 });
    expect(report.groups.map((g: { method: string; mean: { n: number } }) => [g.method, g.mean.n])).toEqual([['base', 2], ['att', 2]]);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| att | ');
    const again = await runCli(['grid', 'run', file, '--out', out]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('dfd grid: 0 completed, 4 already done, 0 failed, 0 stopped');
  });

  it('names bad grid-file fields by path and needs a folder or a queue for status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-cli-grid-bad-'));
    const file = join(dir, 'grid.yaml');
    writeFileSync(file, 'base:\n  source: synthetic:studio\n  model: { width: 9 }\naxes:\n  variant: [att, fancy]\n');
    const r = await runCli(['grid', 'run', file, '--out', join(dir, 'out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`dfd: invalid ${file}:\n  base.model.width: Too big: expected number to be <=4\n  axes.variant[1]: Invalid option`);
    const s = await runCli(['grid', 'status']);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain('dfd grid status needs a grid folder, --queue URL, or both.');
    const w = await runCli(['worker', '--queue', 'http://localhost']);
    expect(w.code).toBe(1);
    expect(w.stderr).toContain("expected a Redis URL like redis://127.0.0.1:6379, got 'http://localhost'");
  });

  it('exits 1 when any cell failed or a cell report is invalid, after writing the report; --max-cells caps the grid (#24 cases 7, 12, 16)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-cli-grid-fail-'));
    const file = join(dir, 'grid.yaml');
    writeFileSync(file, GRID.replace(/source: .*/, 'source: "folder:/nonexistent/dfd-cli-grid"').replace('variant: [base, att]', 'variant: [base]').replace('seed: [0, 1]', 'seed: [0]'));
    const out = join(dir, 'out');
    const run = await runCli(['grid', 'run', file, '--out', out, '--attempts', '1']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('dfd grid: 0 completed, 0 already done, 1 failed, 0 stopped');
    expect(run.stderr).toContain(`dfd: grid ${out} is incomplete: 1 failed of 1 cells`);
    expect(existsSync(join(out, 'report.md'))).toBe(true);
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
    // A report.json that claims a finished run with an accuracy of 1.5: named, left out, exit 1.
    const cell = join(out, 'cells', readdirSync(join(out, 'cells'))[0]!);
    writeFileSync(join(cell, 'report.json'), JSON.stringify({ status: 'completed', source: 'studio', results: [{ target: 'wild', accuracy: 1.5 }], mean: 1.5 }));
    const rep = await runCli(['grid', 'report', out]);
    expect(rep.code).toBe(1);
    expect(rep.stdout).toMatch(/\| invalid \| .*results\.0\.accuracy: Too big/);
    expect(rep.stderr).toContain(`dfd: 1 cell report is invalid and left out of the means:\n  ${join(cell, 'report.json')}: results.0.accuracy: Too big`);
    expect(rep.stderr).not.toContain('unexpected error');
    writeFileSync(file, GRID.replace('seed: [0, 1]', 'seed: [0, 1]\n  epochs: [1, 2]'));
    const big = await runCli(['grid', 'run', file, '--out', join(dir, 'out3'), '--max-cells', '7']);
    expect(big.code).toBe(1);
    expect(big.stderr).toContain('axes: variant (2) x seed (2) x epochs (2) = 8 cells, over the cap of 7');
    expect(existsSync(join(dir, 'out3'))).toBe(false);
  });

  it('--jobs 2: SIGINT stops both cells at a checkpoint, the next dfd grid run --jobs 2 resumes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-cli-grid-jobs-'));
    const file = join(dir, 'grid.yaml');
    writeFileSync(file, GRID.replace('epochs: 1', 'epochs: 3').replace('seed: [0, 1]', 'seed: [0]'));
    const out = join(dir, 'out');
    let cells: string[] = [];
    const first = await gridRun([file, '--out', out, '--jobs', '2'], (child) => {
      const poll = setInterval(() => {
        cells = existsSync(join(out, 'cells')) ? readdirSync(join(out, 'cells')).map((h) => join(out, 'cells', h)) : [];
        if (cells.length === 2 && cells.every((c) => events(c).some((e) => e.type === 'checkpoint' && e.epoch === 1))) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 50);
      child.on('exit', () => clearInterval(poll));
    });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('SIGINT - finishing the running cells at a checkpoint');
    expect(first.stderr).toContain('dfd grid: 0 completed, 0 already done, 0 failed, 2 stopped');
    expect(first.stderr).toContain(`dfd grid: stopped; continue with: dfd grid run ${file} --out ${out}`);
    for (const c of cells) expect(events(c).filter((e) => e.type === 'runEnd').map((e) => e.status)).toEqual(['stopped']);
    const second = await gridRun([file, '--out', out, '--jobs', '2']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('dfd grid: 2 completed, 0 already done, 0 failed, 0 stopped');
    for (const c of cells) {
      const ev = events(c);
      expect(ev.filter((e) => e.type === 'runEnd').map((e) => e.status)).toEqual(['stopped', 'completed']);
      expect(ev.filter((e) => e.type === 'runStart').map((e) => e.startEpoch! >= 1)).toEqual([false, true]);
    }
  });
});
