import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@dfd/core';
import { createEifeTrainer, createTrainer } from './run.js';

// The run's framing frames the source, every target and stage 1 (each framed image cached once
// under $DFD_CACHE_DIR/framing) and is recorded in the saved model.json.
const work = mkdtempSync(join(tmpdir(), 'dfd-framing-run-'));
const saved = process.env.DFD_CACHE_DIR;
beforeAll(async () => {
  await tf.setBackend('cpu');
  process.env.DFD_CACHE_DIR = join(work, 'cache');
});
afterAll(() => {
  if (saved === undefined) delete process.env.DFD_CACHE_DIR;
  else process.env.DFD_CACHE_DIR = saved;
  rmSync(work, { recursive: true, force: true });
});

const pngs = () => readdirSync(join(work, 'cache', 'framing')).filter((f) => f.endsWith('.png')).length;

describe('framing in a run', () => {
  it('stage 2 frames source and targets alike and records the framing in model.json', async () => {
    const out = join(work, 'dfd');
    const run = await createTrainer({
      source: 'synthetic:studio?train=8&val=0&test=0&size=24',
      targets: ['wild=synthetic:wild?train=0&test=5&size=24'],
      variant: 'base',
      out,
      epochs: 1,
      framing: { kind: 'centre-crop', scale: 0.5 },
      model: { width: 0.0625, inputSize: 16 },
      data: { batchSize: 4, evalBatchSize: 8 },
      console: false,
    });
    const { report } = await run.run();
    expect(report.results[0]).toMatchObject({ target: 'wild', count: 5 });
    expect(pngs()).toBe(13);
    expect(JSON.parse(readFileSync(join(out, 'model', 'model.json'), 'utf8')).framing).toEqual({ kind: 'centre-crop', scale: 0.5 });
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).framing).toEqual({ kind: 'centre-crop', scale: 0.5 });
  }, 120_000);

  it('stage 1 records it too; a bad framing is a config error naming the field', async () => {
    const out = join(work, 'eife');
    const run = await createEifeTrainer({
      dataset: 'synthetic:studio?train=6&val=0&test=0&size=20',
      factors: ['pose'],
      out,
      epochs: 1,
      framing: { kind: 'centre-crop', scale: 0.75 },
      model: { width: 0.0625, inputSize: 16, embedDim: 8 },
      data: { batchSize: 3 },
      console: false,
    });
    await run.run();
    expect(JSON.parse(readFileSync(join(out, 'model', 'model.json'), 'utf8')).framing).toEqual({ kind: 'centre-crop', scale: 0.75 });
    await expect(createTrainer({ source: 'synthetic:studio?train=4', out: join(work, 'bad'), framing: { kind: 'align', size: 3 } as never })).rejects.toThrow(ConfigError);
    await expect(createTrainer({ source: 'synthetic:studio?train=4', out: join(work, 'bad'), framing: { kind: 'align', size: 3 } as never })).rejects.toThrow(/framing\.size/);
  }, 120_000);
});
