import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadModelDir } from '@dfd/model/node';
import { loadZooWeights } from '@dfd/zoo/node';
import { runCli } from '../test-utils/run-cli.js';

// The zoo from the command line, as the user runs it (tiny synthetic data, 1 epoch).
describe('dfd with the zoo (face-api from the installed npm package)', () => {
  it('dfd models list --json: ids, roles, installed version and size', async () => {
    const { code, stdout } = await runCli(['models', 'list', '--json']);
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as Array<{ id: string; roles: string[]; installed: boolean; version: string; bytes: number }>;
    expect(list.map((e) => e.id)).toEqual(expect.arrayContaining(['faceapi:expression', 'faceapi:recognition', 'faceapi:age-gender']));
    const rec = list.find((e) => e.id === 'faceapi:recognition')!;
    expect(rec).toMatchObject({ roles: ['eife'], installed: true, version: '1.7.15' });
    expect(rec.bytes).toBeGreaterThan(6_000_000);
  });

  it('train att+eifp on a frozen face-api backbone with zoo EIFEs and a baseline row; the backbone comes out unchanged', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-zoo-'));
    const { code, stdout, stderr } = await runCli([
      'train',
      '--source', 'synthetic:studio?train=14&test=7&size=48',
      '--target', 'wild=synthetic:wild?train=0&test=7&size=48',
      '--variant', 'att+eifp',
      '--backbone', 'faceapi:expression',
      '--freeze-backbone',
      '--eife', 'faceapi:recognition',
      '--eife', 'faceapi:age-gender',
      '--baseline', 'faceapi:expression',
      '--epochs', '1', '--batch-size', '7', '--no-augment', '--no-console', '--backend', 'wasm', '--json',
      '--out', out,
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { config: { model: { layout: string; inputSize: number }; optimizer: { lr: { backbone: number } } }; results: Array<{ target: string; count: number }>; baselines: Array<{ id: string; results: Array<{ target: string; accuracy: number; count: number }>; sourceTest: { count: number } }> };
    expect(report.config.model).toMatchObject({ layout: 'faceapi', inputSize: 112 });
    expect(report.config.optimizer.lr.backbone).toBe(1e-6);
    expect(report.results).toEqual([expect.objectContaining({ target: 'wild', count: 7 })]);
    expect(report.baselines).toEqual([expect.objectContaining({ id: 'faceapi:expression', results: [expect.objectContaining({ target: 'wild', count: 7 })], sourceTest: expect.objectContaining({ count: 7 }) })]);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('faceapi:expression (off the shelf)');
    // Frozen: the saved backbone is face-api's trunk, bit for bit; the MI heads predict 128 and 512 values.
    const model = await loadModelDir(join(out, 'model'));
    const saved = new Map(model.namedParameters());
    const zoo = await loadZooWeights('faceapi:expression');
    for (const [zooName, dfdName] of [['dense0/conv0/filters', 'efe.dense0.conv0.weight'], ['dense3/conv3/pointwise_filter', 'efe.dense3.conv3.pointwise']] as const) {
      expect(Array.from(saved.get(dfdName)!.dataSync())).toEqual(Array.from(zoo[zooName]!.dataSync()));
    }
    expect(saved.get('eifp.heads.0.fc2.weight')!.shape).toEqual([256, 128]);
    expect(saved.get('eifp.heads.1.fc2.weight')!.shape).toEqual([256, 512]);
    model.dispose();
    tf.dispose(Object.values(zoo));
  });

  it('--eife-standardize: the MI term is computed on unit-scale targets (the raw face-api descriptor spreads 0.04 per dimension)', async () => {
    const runMi = async (standardize: boolean): Promise<number> => {
      const out = mkdtempSync(join(tmpdir(), 'dfd-zoo-std-'));
      const { code, stderr } = await runCli([
        'train',
        '--source', 'synthetic:studio?train=14&test=0&size=48',
        '--variant', 'att+eifp', '--backbone', 'faceapi:expression', '--freeze-backbone',
        '--eife', 'faceapi:recognition', ...(standardize ? ['--eife-standardize'] : []),
        '--epochs', '1', '--batch-size', '7', '--no-augment', '--no-console', '--backend', 'wasm', '--seed', '3',
        '--out', out,
      ]);
      expect(code, stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({ eifeStandardize: standardize });
      const first = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; loss?: { mi: number } }).find((e) => e.type === 'batchEnd')!;
      return first.loss!.mi;
    };
    // Same seed, same MI head, same first batch: only the targets' scale differs. Unit-spread
    // targets cost about 0.42 under smooth-L1 even when predicted by their mean; the raw
    // descriptor (values near 0) costs only what the untrained head's own output does (measured 0.28 vs 0.58).
    const raw = await runMi(false);
    const std = await runMi(true);
    expect(std).toBeGreaterThan(0.42);
    expect(std - raw).toBeGreaterThan(0.2);
  });

  it('dfd eval --model faceapi:expression evaluates the zoo classifier as it ships', async () => {
    const { code, stdout, stderr } = await runCli(['eval', '--model', 'faceapi:expression', '--target', 'wild=synthetic:wild?train=0&test=7&size=48', '--backend', 'wasm', '--json']);
    expect(code, stderr).toBe(0);
    const r = JSON.parse(stdout) as { results: Array<{ target: string; count: number; confusion: number[][] }> };
    expect(r.results[0]).toMatchObject({ target: 'wild', count: 7 });
    expect(r.results[0]!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(7);
  });

  it("dfd models list: Human's faceres and emotion rows (installed from @vladmandic/human), no gear", async () => {
    const json = await runCli(['models', 'list', '--json']);
    expect(json.code).toBe(0);
    const list = JSON.parse(json.stdout) as Array<{ id: string; roles: string[]; installed: boolean; version: string; bytes: number; embedDim?: number; inputSize: number }>;
    expect(list.find((e) => e.id === 'human:faceres')).toMatchObject({ roles: ['eife'], installed: true, version: '3.3.6', embedDim: 1024, inputSize: 224 });
    expect(list.find((e) => e.id === 'human:emotion')).toMatchObject({ roles: ['classifier'], installed: true, version: '3.3.6', inputSize: 64 });
    expect(list.find((e) => e.id === 'human:faceres')!.bytes).toBeGreaterThan(6_000_000);
    expect(list.some((e) => e.id.includes('gear'))).toBe(false);
    const text = await runCli(['models', 'list']);
    expect(text.stdout).toMatch(/human:faceres\s+eife\s+@vladmandic\/human@3\.3\.6\s+224px\s+1024-d\s+MIT\s+7\.0 MB\s+installed/);
    expect(text.stdout).toMatch(/human:emotion\s+classifier\s+@vladmandic\/human@3\.3\.6\s+64px/);
    expect(text.stdout).toContain("human:emotion: RGB in 0..1 resized (bilinear) to the input size, grey = 0.2989 R");
  });

  it('train att+eifp with --eife human:faceres (a 1024-d MI target) and --baseline human:emotion', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-zoo-human-'));
    const { code, stdout, stderr } = await runCli([
      'train',
      '--source', 'synthetic:studio?train=4&test=0&size=48',
      '--target', 'wild=synthetic:wild?train=0&test=4&size=48',
      '--variant', 'att+eifp',
      '--eife', 'human:faceres',
      '--baseline', 'human:emotion',
      '--epochs', '1', '--batch-size', '4', '--no-augment', '--no-console', '--backend', 'wasm', '--json',
      '--out', out,
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { results: Array<{ target: string; count: number }>; baselines: Array<{ id: string; results: Array<{ target: string; count: number }> }> };
    expect(report.results).toEqual([expect.objectContaining({ target: 'wild', count: 4 })]);
    expect(report.baselines).toEqual([expect.objectContaining({ id: 'human:emotion', results: [expect.objectContaining({ target: 'wild', count: 4 })] })]);
    const model = await loadModelDir(join(out, 'model'));
    expect(new Map(model.namedParameters()).get('eifp.heads.0.fc2.weight')!.shape).toEqual([256, 1024]);
    model.dispose();
  });

  it("dfd eval --model human:emotion evaluates Human's expression net as it ships", async () => {
    const ev = await runCli(['eval', '--model', 'human:emotion', '--target', 'wild=synthetic:wild?train=0&test=7&size=48', '--backend', 'wasm', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const r = JSON.parse(ev.stdout) as { results: Array<{ target: string; count: number; confusion: number[][] }> };
    expect(r.results[0]).toMatchObject({ target: 'wild', count: 7 });
    expect(r.results[0]!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(7);
  });

  it('a zoo id in the wrong role, or an unknown one, is a one-line error naming the choices', async () => {
    const wrong = await runCli(['train', '--source', 'synthetic:studio?train=7&test=0&size=16', '--variant', 'att', '--backbone', 'faceapi:recognition', '--epochs', '1', '--out', mkdtempSync(join(tmpdir(), 'dfd-zoo-role-')), '--backend', 'cpu', '--no-console']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("zoo model 'faceapi:recognition' cannot be used as a backbone");
    const unknown = await runCli(['eval', '--model', 'faceapi:nope', '--target', 'w=synthetic:wild?train=0&test=2&size=16', '--backend', 'cpu']);
    expect(unknown.code).not.toBe(0);
  });
});
