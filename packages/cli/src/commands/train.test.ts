import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test-utils/run-cli.js';

const root = resolve(import.meta.dirname, '../../../..');

describe('dfd train and Ctrl-C / SIGTERM', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s finishes the step, writes a checkpoint and ends the run as stopped', async (signal) => {
    const out = mkdtempSync(join(tmpdir(), `dfd-${signal.toLowerCase()}-`));
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
    child.kill(signal);
    const code = await exited;
    expect(code, stderr).toBe(0);
    expect(stderr).toContain(`${signal} - finishing the current step`);
    expect(stderr).toContain(`stopped (${signal}); continue with: dfd train --resume`);
    const events = readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const end = events.at(-1);
    expect(end).toMatchObject({ type: 'runEnd', status: 'stopped', reason: signal, epochsDone: 0 });
    const steps = events.filter((e) => e.type === 'batchEnd').length;
    const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8').trim();
    expect(latest).toBe(`step-${String(steps).padStart(8, '0')}-e0s${steps}`);
    const ckpt = JSON.parse(readFileSync(join(out, 'checkpoints', latest, 'checkpoint.json'), 'utf8'));
    expect(ckpt).toMatchObject({ epoch: 0, stepInEpoch: steps, globalStep: steps });
  });
});

describe('two dfd train processes into one --out (issue 17)', () => {
  it('the second is refused naming the first (pid, host, start time) and changes nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-two-procs-'));
    const args = ['--conditions=@dfd/source', '--import', 'tsx', 'packages/cli/src/bin.ts', 'train', '--source', 'synthetic:studio?train=4096&test=0&size=16', '--variant', 'base', '--out', out, '--epochs', '3', '--batch-size', '8', '--width', '0.0625', '--input-size', '16', '--no-console', '--backend', 'cpu'];
    const first = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const firstExit = new Promise<number | null>((r) => first.on('exit', (code) => r(code)));
    const metrics = join(out, 'metrics.jsonl');
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !(existsSync(metrics) && readFileSync(metrics, 'utf8').includes('"batchEnd"'))) await new Promise((r) => setTimeout(r, 200));
    const config = readFileSync(join(out, 'config.json'), 'utf8');
    const second = spawnSync(process.execPath, [...args, '--seed', '7'], { cwd: root, encoding: 'utf8' });
    first.kill('SIGINT');
    expect(await firstExit).toBe(0);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`dfd: ${out} is in use by another run: process ${first.pid} on ${hostname()}, started \\d{4}-\\d\\d-\\d\\dT`));
    expect(second.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(config);
    const starts = readFileSync(metrics, 'utf8').trim().split('\n').filter((l) => l.includes('"runStart"'));
    expect(starts).toHaveLength(1);
  });
});

/** Runs `dfd <args>` in-process; returns exit code and what it printed. */
const dfd = (...args: string[]) => runCli(args);

describe('dfd train and its run folder (issue 17)', () => {
  const tiny = ['--source', 'synthetic:studio?train=8&test=0&size=16', '--target', 'wild=synthetic:wild?train=0&test=4&size=16', '--variant', 'base', '--epochs', '1', '--batch-size', '4', '--width', '0.0625', '--input-size', '16', '--no-console', '--backend', 'cpu'];

  it('--out on a file, or under a file, is one line naming the path (no stack trace)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-outfile-'));
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'x');
    const onFile = await dfd('train', ...tiny, '--out', file);
    expect(onFile.code).toBe(1);
    expect(onFile.stderr).toContain(`dfd: --out ${file} is a file, not a folder; choose another --out.`);
    const under = await dfd('train', ...tiny, '--out', join(file, 'run'));
    expect(under.code).toBe(1);
    expect(under.stderr).toContain(`dfd: cannot create --out ${join(file, 'run')}: ${file} is a file, not a folder.`);
    expect(onFile.stderr + under.stderr).not.toMatch(/\n\s+at /);
  });

  it('a finished run folder is not overwritten without --overwrite; --resume continues it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-rerun-'));
    expect((await dfd('train', ...tiny, '--out', out)).code).toBe(0);
    const weights = readFileSync(join(out, 'model', 'weights.bin'));
    const again = await dfd('train', ...tiny, '--out', out, '--seed', '5');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`dfd: ${out} already holds a run (config.json, checkpoints, model, report.json, report.md, metrics.jsonl); continue it with --resume ${out}, replace it with --overwrite`);
    expect(readFileSync(join(out, 'model', 'weights.bin')).equals(weights)).toBe(true);
    expect((await dfd('train', '--resume', out, '--no-console', '--backend', 'cpu')).code).toBe(0);
    const over = await dfd('train', ...tiny, '--out', out, '--seed', '5', '--overwrite');
    expect(over.code, over.stderr).toBe(0);
    expect(readFileSync(join(out, 'model', 'weights.bin')).equals(weights)).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).seed).toBe(5);
  });
});

describe('dfd train --resume with other settings (issue 24, case 9)', () => {
  const tiny = ['--source', 'synthetic:studio?train=8&test=0&size=16', '--variant', 'base', '--epochs', '1', '--batch-size', '4', '--width', '0.0625', '--input-size', '16', '--no-console', '--backend', 'cpu'];
  it('is refused in one message listing each field old -> new, with no stack trace', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-resume-other-'));
    expect((await dfd('train', ...tiny, '--out', out)).code).toBe(0);
    const r = await dfd('train', '--resume', out, '--epochs', '4', '--width', '0.125', '--no-console', '--backend', 'cpu');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--resume ${out}: the run was started with other settings than the ones given now`);
    expect(r.stderr).toContain('epochs: 1 -> 4');
    expect(r.stderr).toContain('model.width: 0.0625 -> 0.125');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
