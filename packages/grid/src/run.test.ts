import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DfdPlugin } from '@dfd/core';
import { JsonlLoggerPlugin } from '@dfd/plugin-jsonl-logger';
import { schedulerPlugins } from '@dfd/plugin-schedulers';
import type { EifeConfig, TrainConfig } from '@dfd/trainer';
import { beforeAll, describe, expect, it } from 'vitest';
import { gridReport, reportMarkdown } from './report.js';
import { STOPPED_EXIT, childExecutor, runCellInProcess, runGridLocal } from './run.js';
import { expandGrid } from './spec.js';
import { cellProgress, gridProgress, readFailed, readMetrics, summariseProgress } from './store.js';

const base = {
  targets: { wild: 'synthetic:wild?train=0&test=16&size=16' },
  variant: 'base',
  epochs: 1,
  model: { width: 0.0625, inputSize: 16 },
  data: { batchSize: 16, augment: false },
  backend: 'cpu',
};
// A cell's plugins come from its caller (the CLI passes createDefaultPlugins): here the schedules
// and the metrics log that grid progress reads, as `dfd grid` gives them.
const plugins = (c: TrainConfig | EifeConfig): DfdPlugin[] => [...schedulerPlugins(c.schedule), new JsonlLoggerPlugin({ path: join(c.out, 'metrics.jsonl') })];
const GOOD = 'synthetic:studio?train=32&test=0&size=16';
const BAD = 'folder:/nonexistent/dfd-grid-local';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('runGridLocal (in process)', () => {
  it('retries a failing cell a bounded number of times, records its error, runs the rest, and skips finished cells on a re-run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-run-'));
    const plan = expandGrid({ base, axes: { source: [BAD, GOOD], seed: [0] } }, dir);
    const events: string[] = [];
    const execute = (d: string) => runCellInProcess(d, { plugins });
    const first = await runGridLocal(plan, { execute, attempts: 3, onEvent: (e) => events.push(`${e.type} ${e.label} ${e.attempt ?? ''}`.trim()) });
    expect(first).toEqual({ completed: 1, skipped: 0, failed: 1, stopped: 0 });
    const badCell = plan.cells[0]!;
    const goodCell = plan.cells[1]!;
    expect(events.filter((e) => e.startsWith('retry'))).toEqual([`retry ${badCell.label} 1`, `retry ${badCell.label} 2`]);
    expect(events).toContain(`failed ${badCell.label} 3`);
    const failed = readFailed(badCell.dir)!;
    expect(failed.attempts).toBe(3);
    expect(failed.error).toMatch(/nonexistent\/dfd-grid-local/);
    const r = gridReport(dir);
    expect(r.counts).toEqual({ done: 1, failed: 1, pending: 0, invalid: 0 });
    expect(reportMarkdown(r)).toMatch(/\| failed \| .*nonexistent\/dfd-grid-local/);
    expect(summariseProgress(gridProgress(dir))).toMatchObject({ done: 1, failed: 1, waiting: 0, running: 0, etaSeconds: 0 });
    expect(cellProgress({ ...goodCell, kind: 'dfd' })).toMatchObject({ state: 'done', epoch: 1, epochs: 1, starts: 1 });

    // Again: the finished cell is skipped (never trained twice), the failed one is tried again.
    const again = await runGridLocal(plan, { execute, attempts: 1 });
    expect(again).toEqual({ completed: 0, skipped: 1, failed: 1, stopped: 0 });
    expect(readMetrics(goodCell.dir).filter((e) => e.type === 'runStart')).toHaveLength(1);
  });

  it('a stopped grid continues where it stopped: the interrupted cell resumes from its checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-stop-'));
    const plan = expandGrid({ base: { ...base, source: GOOD, epochs: 2 }, axes: { seed: [0, 1] } }, dir);
    let stopping = false;
    // Ctrl-C during the first cell's second epoch: the cell stops at a checkpoint, no new cell starts.
    const execute = (d: string) =>
      runCellInProcess(d, {
        plugins,
        onStart: (stop) => {
          const poll = setInterval(() => {
            if (readMetrics(d).some((e) => e.type === 'checkpoint' && e.epoch === 1)) {
              clearInterval(poll);
              stopping = true;
              stop('SIGINT');
            }
          }, 5);
        },
      });
    const first = await runGridLocal(plan, { execute, stopping: () => stopping });
    expect(first).toEqual({ completed: 0, skipped: 0, failed: 0, stopped: 1 });
    expect(cellProgress({ ...plan.cells[1]!, kind: 'dfd' }).state).toBe('waiting');
    const resumed = await runGridLocal(plan, { execute: (d) => runCellInProcess(d, { plugins }) });
    expect(resumed).toEqual({ completed: 2, skipped: 0, failed: 0, stopped: 0 });
    const ev = readMetrics(plan.cells[0]!.dir);
    expect(ev.filter((e) => e.type === 'runStart').map((e) => e.startEpoch)).toEqual([0, 1]);
    expect(ev.filter((e) => e.type === 'runEnd').map((e) => e.status)).toEqual(['stopped', 'completed']);
    expect(JSON.parse(readFileSync(join(plan.cells[0]!.dir, 'report.json'), 'utf8')).status).toBe('completed');
  });
});

describe('childExecutor', () => {
  // Stand-ins for `dfd grid cell`: node -e with the exit code and stderr of each case.
  const node = (code: string) => childExecutor({ cli: [process.execPath, '-e', code] });

  it('maps exit codes to completed / stopped and a failure to its error line', async () => {
    await expect(node('process.exit(0)')('/tmp/x')).resolves.toBe('completed');
    await expect(node(`process.exit(${STOPPED_EXIT})`)('/tmp/x')).resolves.toBe('stopped');
    await expect(node("process.stderr.write('dfd: tfjs backend cpu\\ndfd: source folder:/nope: no such folder\\n'); process.exit(1)")('/tmp/x')).rejects.toThrow(/^source folder:\/nope: no such folder$/);
    await expect(node("process.stderr.write('file:///a.ts:1\\nimport { x } from \\'y\\';\\nSyntaxError: no export named x\\n    at ModuleJob._instantiate (node:internal)\\n'); process.exit(1)")('/tmp/x')).rejects.toThrow(/^import \{ x \} from 'y';\nSyntaxError: no export named x$/);
  });

  it('passes the cell folder and --parent-pipe to the child, whose stdin closes when this process lets go', async () => {
    const args = await new Promise<string[]>((resolveArgs, reject) => {
      const exec = childExecutor({ cli: [process.execPath, '-e', "process.stdin.resume(); process.stdin.on('end', () => { process.stderr.write('dfd: ' + JSON.stringify(process.argv.slice(1)) + '\\n'); process.exit(1); })"], onSpawn: (_d, child) => child.stdin!.end() });
      exec('/tmp/cell-a').then(() => reject(new Error('expected a failure')), (err: Error) => resolveArgs(JSON.parse(err.message) as string[]));
    });
    expect(args).toEqual(['grid', 'cell', '/tmp/cell-a', '--parent-pipe']);
  });
});

describe('grid-folder lock (#24 case 16)', () => {
  it('refuses a second run on a grid folder while the first holds it, without touching its cells, and frees it afterwards', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-lock-'));
    const plan = expandGrid({ base: { ...base, source: GOOD }, axes: { seed: [0, 1] } }, dir);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    let started = 0;
    // The first run's cells wait until the test lets them end (they stand in for training).
    const first = runGridLocal(plan, { execute: async () => (started++, await held, 'completed') });
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toBe(1);
    const calls: string[] = [];
    await expect(runGridLocal(plan, { execute: async (d) => (calls.push(d), 'completed') })).rejects.toThrow(/is in use by another run: process \d+ on .*run\.lock/);
    expect(calls).toEqual([]);
    expect(readFailed(plan.cells[0]!.dir)).toBeNull();
    release();
    expect(await first).toEqual({ completed: 2, skipped: 0, failed: 0, stopped: 0 });
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
    // Once released, the folder can be run again.
    expect(await runGridLocal(plan, { execute: async () => 'completed' })).toEqual({ completed: 2, skipped: 0, failed: 0, stopped: 0 });
  });
});
