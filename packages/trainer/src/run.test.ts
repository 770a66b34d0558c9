import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DfdEvent, DfdPlugin } from '@dfd/core';
import { createDfdNet } from '@dfd/model';
import { saveModelDir } from '@dfd/model/node';
import { BEST_DIR, createTrainer, loadPretrainedBackbone } from './run.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('createTrainer options', () => {
  it('--backbone copies efe.* (weights and BN statistics) and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-bb-'));
    const pre = createDfdNet({ variant: 'base', width: 0.0625, inputSize: 16, seed: 1 });
    await saveModelDir(pre, dir);
    const net = createDfdNet({ variant: 'att', width: 0.0625, inputSize: 16, seed: 2 });
    const n = await loadPretrainedBackbone(net, dir);
    const preAll = new Map([...pre.namedParameters(), ...pre.namedBuffers()]);
    const netAll = [...net.namedParameters(), ...net.namedBuffers()];
    expect(n).toBe(netAll.filter(([k]) => k.startsWith('efe.')).length);
    for (const [k, v] of netAll) {
      if (k.startsWith('efe.')) expect(Array.from(v.dataSync()), k).toEqual(Array.from(preAll.get(k)!.dataSync()));
    }
    expect(Array.from(net.namedParameters().find(([k]) => k === 'classifier.weight')![1].dataSync())).not.toEqual(Array.from(preAll.get('classifier.weight')!.dataSync()));
    const wider = createDfdNet({ variant: 'base', width: 0.125, inputSize: 16 });
    await expect(loadPretrainedBackbone(wider, dir)).rejects.toThrow(/use the same --width/);
    [pre, net, wider].forEach((m) => m.dispose());
  });

  it('selection source-val evaluates the source val split each epoch (never a target)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-sel-'));
    const evals: Array<Extract<DfdEvent, { type: 'evaluation' }>> = [];
    const spy: DfdPlugin = { name: 'spy', setup: (ctx) => ctx.on('evaluation', (e) => void (e.split === 'val' && evals.push(e))) }; // (the targets come after: split 'target')
    const run = await createTrainer(
      {
        source: 'synthetic:studio?train=8&val=6&test=0&size=16',
        targets: ['wild=synthetic:wild?train=0&test=5&size=16'],
        variant: 'base',
        out,
        epochs: 2,
        selection: 'source-val',
        model: { width: 0.0625, inputSize: 16 },
        data: { batchSize: 4, evalBatchSize: 8 },
        console: false,
      },
      { plugins: [spy] },
    );
    const { report, result } = await run.run();
    expect(evals.map((e) => [e.split, e.results[0]!.target, e.results[0]!.count])).toEqual([['val', 'source-val', 6], ['val', 'source-val', 6]]);
    expect(result.history.map((h) => h.val_accuracy)).toEqual(evals.map((e) => e.mean));
    expect(report.selection).toBe('source-val');
    expect(result.reason).toMatch(/weights of epoch [12] \(best source val accuracy/);
    expect(report.results[0]).toMatchObject({ target: 'wild', count: 5 });
  });

  it('selection source-val keeps the best epoch on disk, so a run stopped after it and resumed reports the same weights as an uninterrupted one', async () => {
    const config = (out: string) => ({
      source: 'synthetic:studio?train=12&val=8&test=0&size=16',
      targets: ['wild=synthetic:wild?train=0&test=4&size=16'],
      variant: 'base' as const,
      out,
      epochs: 4,
      selection: 'source-val' as const,
      model: { width: 0.0625, inputSize: 16 },
      optimizer: { lr: { heads: 0.02 } },
      data: { batchSize: 4, evalBatchSize: 8 },
      console: false,
      seed: 3,
    });
    const whole = mkdtempSync(join(tmpdir(), 'dfd-best-whole-'));
    const a = await (await createTrainer(config(whole))).run();
    const bestEpoch = Number(/weights of epoch (\d+)/.exec(a.result.reason ?? '')?.[1]);
    // The case that matters: the best epoch is not the last one, and the run stops right after it.
    expect(bestEpoch).toBeGreaterThan(0);
    expect(bestEpoch).toBeLessThan(4);
    expect(existsSync(join(whole, BEST_DIR, 'model.json'))).toBe(true);

    const split = mkdtempSync(join(tmpdir(), 'dfd-best-split-'));
    const stopper: DfdPlugin = { name: 'stop', setup: (ctx) => ctx.on('epochEnd', (e) => void (e.epoch === bestEpoch && ctx.requestStop('test'))) };
    const first = await (await createTrainer(config(split), { plugins: [stopper] })).run();
    expect(first.result.status).toBe('stopped');
    expect(first.result.epochsDone).toBe(bestEpoch);
    const resumed = await (await createTrainer(config(split), { resume: true })).run();
    expect(resumed.result.epochsDone).toBe(4);
    expect(resumed.result.reason).toMatch(new RegExp(`weights of epoch ${bestEpoch} \\(best source val accuracy`));
    const weights = (dir: string) => readFileSync(join(dir, 'model', 'weights.bin'));
    expect(weights(split).equals(weights(whole))).toBe(true);
    expect(resumed.report.results[0]!.accuracy).toBe(a.report.results[0]!.accuracy);
  });
});
