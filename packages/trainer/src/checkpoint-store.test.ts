import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DfdEvent, DfdPlugin } from '@dfd/core';
import { schedulerPlugins } from '@dfd/plugin-schedulers';
import { MemoryCheckpointStore, checkpointName, type CheckpointSaveMeta, type StoredTensor } from './checkpoint-store.js';
import { composeTrainer } from './compose.js';
import { tensorBatchSource } from './data.js';
import { CheckpointError } from './errors.js';
import { DfdTask } from './task.js';
import { TinyDfdNet, TinyEife, toySamples } from './test-utils/tiny-model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const meta = (globalStep: number, epoch: number, stepInEpoch = 0): CheckpointSaveMeta => ({
  stage: 'dfd',
  runId: 'r',
  epoch,
  stepInEpoch,
  globalStep,
  rng: [1, 2, 3, 4],
  loader: null,
  plugins: { p: { best: 0.5 } },
  optimizer: { groups: [{ name: 'heads', lr: 0.1, weightDecay: 0.01 }], steps: { w: globalStep } },
  epochAccumulator: {},
  history: [{ epoch: 1, loss: 2 }],
});

describe('checkpointName', () => {
  it('pads the step to 8 digits and marks a mid-epoch stop; names sort in save order', () => {
    expect(checkpointName({ globalStep: 12, epoch: 3, stepInEpoch: 0 })).toBe('step-00000012');
    expect(checkpointName({ globalStep: 13, epoch: 3, stepInEpoch: 1 })).toBe('step-00000013-e3s1');
    const names = [9, 10, 100].map((g) => checkpointName({ globalStep: g, epoch: 0, stepInEpoch: 0 }));
    expect([...names].sort()).toEqual(names);
  });
});

describe('MemoryCheckpointStore', () => {
  it('saves and loads copies, with the format, manifest and byte count the file store writes', () => {
    const store = new MemoryCheckpointStore('run-a');
    expect(store.exists()).toBe(false);
    expect(store.removeStaleTemp()).toEqual([]);
    const w = new Float32Array([1, 2, 3]);
    const tensors = new Map<string, StoredTensor>([
      ['model/w', { shape: [3], dtype: 'float32', data: w }],
      ['model/n', { shape: [1], dtype: 'int32', data: new Int32Array([7]) }],
    ]);
    const m = meta(4, 1, 1);
    expect(store.save(m, tensors)).toBe('run-a/step-00000004-e1s1');
    w[0] = 99; // the trainer's later steps overwrite its arrays
    m.history.push({ epoch: 2, loss: 1 });
    const loaded = store.loadNewestIntact();
    expect(loaded).toMatchObject({ path: 'run-a/step-00000004-e1s1', skipped: [] });
    expect(loaded.checkpoint.meta).toMatchObject({ format: 'dfd-checkpoint', formatVersion: 1, globalStep: 4, epoch: 1, stepInEpoch: 1, bytes: 16, history: [{ epoch: 1, loss: 2 }] });
    expect(loaded.checkpoint.meta.manifest).toEqual([
      { name: 'model/w', shape: [3], dtype: 'float32', offset: 0, length: 3 },
      { name: 'model/n', shape: [1], dtype: 'int32', offset: 12, length: 1 },
    ]);
    expect(Array.from(loaded.checkpoint.tensors.get('model/w')!.data)).toEqual([1, 2, 3]);
    expect(loaded.checkpoint.tensors.get('model/n')!.data).toBeInstanceOf(Int32Array);
    // A load is a copy too: changing it leaves the store as it was.
    (loaded.checkpoint.tensors.get('model/w')!.data as Float32Array)[1] = -1;
    expect(Array.from(store.loadNewestIntact().checkpoint.tensors.get('model/w')!.data)).toEqual([1, 2, 3]);
  });

  it('keeps the newest `keep`, loads the newest, and says so when there is none', () => {
    const store = new MemoryCheckpointStore(undefined, 2);
    expect(() => store.loadNewestIntact()).toThrow(CheckpointError);
    expect(() => store.loadNewestIntact()).toThrow(/no checkpoint in memory: nothing was saved/);
    for (const [g, e] of [[0, 0], [3, 1], [6, 2]] as const) store.save(meta(g, e), new Map());
    expect(store.names()).toEqual(['step-00000006', 'step-00000003']);
    expect(store.loadNewestIntact().checkpoint.meta.globalStep).toBe(6);
    expect(() => new MemoryCheckpointStore('x', 0)).toThrow(/keeps at least one checkpoint; got keep = 0/);
  });
});

describe('Trainer with a MemoryCheckpointStore (no file system)', () => {
  const samples = toySamples(24, 8, 7);
  const opts = { epochs: 3, lr: { backbone: 0.01, heads: 0.05 }, runId: 'mem' };
  // The scheduler plugins the composition root adds by default (paper gamma, lambda 1), cosine T_max 4.
  const schedules = () => schedulerPlugins({ cosine: { tMax: 4, etaMin: 0 }, gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } });
  const setup = (checkpoints: MemoryCheckpointStore | null, plugins: DfdPlugin[] = [], resume = false) => {
    const model = new TinyDfdNet({ miDims: [4, 4] });
    const eifes = [new TinyEife([{ name: 'a', classes: 2 }], 4, 3), new TinyEife([{ name: 'b', classes: 3 }], 4, 4)];
    const data = tensorBatchSource(samples, { batchSize: 8, seed: 5, shuffle: true, augment: (x, rng) => tf.mul(x, rng.uniform(0.8, 1.2)) });
    const { trainer } = composeTrainer({ task: new DfdTask(model, eifes), data, options: { ...opts, resume }, checkpoints, plugins: [...schedules(), ...plugins], seed: 9 });
    return { trainer, model };
  };
  const weights = (m: TinyDfdNet) => Object.fromEntries([...m.namedParameters(), ...m.namedBuffers()].map(([n, v]) => [n, Array.from(v.dataSync())]));

  it('resume after a mid-epoch stop reproduces the uninterrupted run exactly (CPU)', async () => {
    const full = setup(null);
    const fullResult = await full.trainer.run();
    const store = new MemoryCheckpointStore('mem-run');
    const events: DfdEvent[] = [];
    const stopper: DfdPlugin = {
      name: 'stopper',
      setup: (ctx) =>
        ctx.on('*', (e) => {
          events.push(e);
          if (e.type === 'batchEnd' && e.globalStep === 4) ctx.requestStop('test stop');
        }),
    };
    const first = setup(store, [stopper]);
    expect(await first.trainer.run()).toMatchObject({ status: 'stopped', globalStep: 4, epochsDone: 1, checkpoint: 'mem-run/step-00000004-e1s1' });
    expect(events.filter((e) => e.type === 'checkpoint').map((e) => (e as { path: string }).path)).toEqual(['mem-run/step-00000003']);
    expect(store.names()).toEqual(['step-00000004-e1s1', 'step-00000003']);
    const second = setup(store, [], true);
    const r2 = await second.trainer.run();
    expect(r2.status).toBe('completed');
    expect(r2.globalStep).toBe(9);
    expect(r2.history.map((h) => h.loss)).toEqual(fullResult.history.map((h) => h.loss));
    expect(weights(second.model)).toEqual(weights(full.model));
    full.model.dispose();
    first.model.dispose();
    second.model.dispose();
  });

  it('resume with an empty store or none fails naming it', async () => {
    await expect(setup(new MemoryCheckpointStore('empty-run'), [], true).trainer.run()).rejects.toThrow(/cannot resume: no checkpoint in empty-run\./);
    await expect(setup(null, [], true).trainer.run()).rejects.toThrow(/cannot resume: no checkpoint in \(no checkpoint store\)\./);
  });
});
