import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../../..');

describe('dfd train and Ctrl-C', () => {
  it('SIGINT finishes the step, writes a checkpoint and ends the run as stopped', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-sigint-'));
    const child = spawn(
      process.execPath,
      ['--conditions=@dfd/source', '--import', 'tsx', 'packages/cli/src/bin.ts', 'train', '--source', 'synthetic:studio?train=4096&test=0&size=16', '--variant', 'base', '--out', out, '--epochs', '3', '--batch-size', '8', '--width', '0.0625', '--input-size', '16', '--no-console'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const metrics = join(out, 'metrics.jsonl');
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !(existsSync(metrics) && readFileSync(metrics, 'utf8').includes('"batchEnd"'))) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/SIGINT - finishing the current step/);
    expect(stderr).toMatch(/stopped \(SIGINT\); continue with: dfd train --resume/);
    const events = readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const end = events.at(-1);
    expect(end).toMatchObject({ type: 'runEnd', status: 'stopped', reason: 'SIGINT', epochsDone: 0 });
    const steps = events.filter((e) => e.type === 'batchEnd').length;
    const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8').trim();
    expect(latest).toBe(`step-${String(steps).padStart(8, '0')}-e0s${steps}`);
    const ckpt = JSON.parse(readFileSync(join(out, 'checkpoints', latest, 'checkpoint.json'), 'utf8'));
    expect(ckpt).toMatchObject({ epoch: 0, stepInEpoch: steps, globalStep: steps });
  });
});
