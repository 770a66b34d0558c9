import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mergePlugins, type DfdEvent, type DfdPlugin, type StepHookContext } from '@dfd/core';
import { noteWasmOutput, WasmKernelFailure } from '@dfd/backends';
import { EarlyStoppingPlugin } from '@dfd/plugin-early-stopping';
import { paperGamma, ScheduleMonitorPlugin, schedulerPlugins } from '@dfd/plugin-schedulers';
import { FsCheckpointStore } from './checkpoint.js';
import { composeTrainer } from './compose.js';
import { loaderBatchSource, tensorBatchSource } from './data.js';
import { createLoader, createSyntheticDataset, trainTransform } from '@dfd/datasets';
import { DfdTask, EifeTask } from './task.js';
import { TinyDfdNet, TinyEife, toySamples } from './test-utils/tiny-model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

class Recorder implements DfdPlugin {
  readonly name = 'recorder';
  events: DfdEvent[] = [];
  onBatch?: (e: Extract<DfdEvent, { type: 'batchEnd' }>, stop: (r: string) => void) => void;
  setup(ctx: Parameters<DfdPlugin['setup']>[0]) {
    ctx.on('*', (e) => {
      this.events.push(e);
      if (e.type === 'batchEnd') this.onBatch?.(e, ctx.requestStop);
    });
  }
  of<T extends DfdEvent['type']>(t: T) {
    return this.events.filter((e) => e.type === t) as Array<Extract<DfdEvent, { type: T }>>;
  }
}

const samples = toySamples(24, 8, 7);
const opts = { epochs: 3, lr: { backbone: 0.01, heads: 0.05 }, runId: 't' };
/** The scheduler plugins a CLI run gets by default (paper gamma, lambda 1), with cosine T_max 4. */
const schedules = () => schedulerPlugins({ cosine: { tMax: 4, etaMin: 0 }, gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } });
/** composeTrainer with the default scheduler plugins first, as the composition root (the CLI) adds them. */
const compose = (c: Parameters<typeof composeTrainer>[0]) => composeTrainer({ ...c, plugins: [...schedules(), ...(c.plugins ?? [])] });

function setup(runDir?: string, plugins: DfdPlugin[] = [], resume = false) {
  const model = new TinyDfdNet({ miDims: [4, 4] });
  const eifes = [new TinyEife([{ name: 'a', classes: 2 }], 4, 3), new TinyEife([{ name: 'b', classes: 3 }], 4, 4)];
  const data = tensorBatchSource(samples, { batchSize: 8, seed: 5, shuffle: true, augment: (x, rng) => tf.mul(x, rng.uniform(0.8, 1.2)) });
  const { trainer } = compose({ task: new DfdTask(model, eifes), data, options: { ...opts, resume }, checkpoints: runDir ? new FsCheckpointStore(runDir) : null, plugins, seed: 9 });
  return { trainer, model, eifes };
}

const weights = (m: TinyDfdNet) => Object.fromEntries([...m.namedParameters(), ...m.namedBuffers()].map(([n, v]) => [n, Array.from(v.dataSync())]));

describe('Trainer (stage 2 loop)', () => {
  it('emits the schedules: cosine lr per epoch, gamma(p) and lambda per step, and learns', async () => {
    const rec = new Recorder();
    const { trainer, model } = setup(undefined, [rec]);
    const result = await trainer.run();
    expect(result.status).toBe('completed');
    const batches = rec.of('batchEnd');
    expect(batches).toHaveLength(9);
    batches.forEach((b, i) => {
      expect(b.globalStep).toBe(i + 1);
      expect(b.gamma).toBeCloseTo(paperGamma(i / 9), 12); // p = steps done before this step / total
      expect(b.lambda).toBe(1);
      const epoch = Math.floor(i / 3);
      expect(b.learningRates.heads).toBeCloseTo(0.05 * (1 + Math.cos((Math.PI * epoch) / 4)) / 2, 12);
      expect(b.learningRates.backbone).toBeCloseTo(0.01 * (1 + Math.cos((Math.PI * epoch) / 4)) / 2, 12);
      expect(b.loss.total).toBeCloseTo(b.loss.cls! + b.gamma! * b.loss.mi!, 5);
    });
    expect(rec.of('runEnd')[0]).toMatchObject({ status: 'completed', epochsDone: 3 });
    expect(result.history).toHaveLength(3);
    expect(result.history[2]!.loss).toBeLessThan(result.history[0]!.loss!);
    model.dispose();
  });

  it("a user's gamma scheduler plugin replaces the default by name: the MI term's weight of every step is the value it set", async () => {
    // gamma = 0.1 * (step + 1): a schedule no built-in has, so nothing else can produce it.
    const set: number[] = [];
    const mine: DfdPlugin = {
      name: 'gamma-scheduler',
      setup() {},
      beforeStep(ctx: StepHookContext) {
        ctx.controls.gamma = 0.1 * (ctx.globalStep + 1);
        set.push(ctx.controls.gamma);
      },
    };
    const plugins = mergePlugins(schedules(), [mine]);
    expect(plugins.map((p) => p.name)).toEqual(['lr-scheduler', 'gamma-scheduler', 'lambda-scheduler']);
    expect(plugins[1]).toBe(mine);
    const model = new TinyDfdNet({ miDims: [4, 4] });
    const eifes = [new TinyEife([{ name: 'a', classes: 2 }], 4, 3), new TinyEife([{ name: 'b', classes: 3 }], 4, 4)];
    const task = new DfdTask(model, eifes);
    // What the task multiplied L_MI by, read inside its loss (where Eq. 10 is formed).
    const used: number[] = [];
    const loss = task.loss.bind(task);
    task.loss = (batch, prepared, ctx) => {
      used.push(ctx.gamma!);
      return loss(batch, prepared, ctx);
    };
    const rec = new Recorder();
    const data = tensorBatchSource(samples, { batchSize: 8, seed: 5, shuffle: true });
    const { trainer } = composeTrainer({ task, data, options: opts, plugins: [...plugins, rec], seed: 9 });
    expect((await trainer.run()).status).toBe('completed');
    const batches = rec.of('batchEnd');
    expect(set).toEqual([0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001, 0.8, 0.9]);
    expect(used).toEqual(set);
    batches.forEach((b, i) => {
      expect(b.gamma).toBe(set[i]);
      expect(b.p).toBe(i / 9);
      expect(b.loss.mi).toBeGreaterThan(0);
      expect(b.loss.total).toBeCloseTo(b.loss.cls! + set[i]! * b.loss.mi!, 5);
    });
    model.dispose();
  });

  it('the schedule monitor agrees with the default schedulers at every step (p of the step, not after it)', async () => {
    const monitor = new ScheduleMonitorPlugin({ gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } });
    const rec = new Recorder();
    const { model, trainer } = setup(undefined, [monitor, rec]);
    await trainer.run();
    expect(rec.of('batchEnd')).toHaveLength(9);
    expect(monitor.mismatchCount).toBe(0);
    expect(rec.of('warning')).toEqual([]);
    model.dispose();
  });

  it('a model with MI heads and no gamma scheduler fails at the first step, saying which plugin is missing', async () => {
    const model = new TinyDfdNet({ miDims: [4] });
    const rec = new Recorder();
    const data = tensorBatchSource(samples, { batchSize: 8 });
    const withoutGamma = schedules().filter((p) => p.name !== 'gamma-scheduler');
    const { trainer } = composeTrainer({ task: new DfdTask(model, [new TinyEife([{ name: 'a', classes: 2 }], 4)]), data, options: opts, plugins: [...withoutGamma, rec] });
    await expect(trainer.run()).rejects.toThrow(/no plugin set gamma \(the weight of the MI loss\) for this step, and the model has MI heads\. Pass the scheduler plugins/);
    expect(rec.of('batchEnd')).toEqual([]);
    expect(rec.of('runEnd')[0]).toMatchObject({ status: 'failed' });
    model.dispose();
  });

  it('resume after a mid-epoch stop reproduces the uninterrupted run exactly (CPU)', async () => {
    const full = setup(mkdtempSync(join(tmpdir(), 'dfd-full-')));
    const fullResult = await full.trainer.run();
    const dir = mkdtempSync(join(tmpdir(), 'dfd-resume-'));
    const stopper = new Recorder();
    stopper.onBatch = (e, stop) => {
      if (e.globalStep === 4) stop('test stop');
    };
    const first = setup(dir, [stopper]);
    const r1 = await first.trainer.run();
    expect(r1).toMatchObject({ status: 'stopped', reason: 'test stop', globalStep: 4, epochsDone: 1 });
    expect(stopper.of('runEnd')[0]).toMatchObject({ status: 'stopped' });
    expect(new FsCheckpointStore(dir).load().meta).toMatchObject({ epoch: 1, stepInEpoch: 1, globalStep: 4 });
    const rec = new Recorder();
    const second = setup(dir, [rec], true);
    const r2 = await second.trainer.run();
    expect(r2.status).toBe('completed');
    expect(rec.of('batchEnd').map((b) => b.globalStep)).toEqual([5, 6, 7, 8, 9]);
    expect(r2.history.map((h) => h.loss)).toEqual(fullResult.history.map((h) => h.loss));
    expect(weights(second.model)).toEqual(weights(full.model));
    expect(second.trainer.adamw.getState().params['classifier.weight']!.step).toBe(9);
  });

  it('a mid-epoch stop without a checkpoint store ends the run stopped (nothing to write)', async () => {
    const stopper = new Recorder();
    stopper.onBatch = (e, stop) => {
      if (e.globalStep === 4) stop('no store');
    };
    const { trainer, model } = setup(undefined, [stopper]);
    const r = await trainer.run();
    expect(r).toMatchObject({ status: 'stopped', reason: 'no store', globalStep: 4, epochsDone: 1 });
    expect(r.checkpoint).toBeUndefined();
    model.dispose();
  });

  it('early stopping ends the run with status stopped', async () => {
    const rec = new Recorder();
    const { trainer } = setup(undefined, [rec, new EarlyStoppingPlugin({ monitor: 'accuracy', baseline: 2, patience: 1 })]);
    const result = await trainer.run();
    expect(result.status).toBe('stopped');
    expect(result.epochsDone).toBe(2);
    expect(result.reason).toMatch(/accuracy did not improve/);
    expect(rec.of('runEnd')[0]).toMatchObject({ status: 'stopped', epochsDone: 2 });
  });

  it('a NaN loss stops with an error event and leaves a usable checkpoint', async () => {
    const bad = toySamples(16, 8, 3);
    // One NaN pixel in sample 11; with batch 8 and no shuffle it lands in epoch 0's second batch.
    bad.images[11 * 8 * 8 * 3 + 5] = Number.NaN;
    const dir = mkdtempSync(join(tmpdir(), 'dfd-nan-'));
    const rec = new Recorder();
    const model = new TinyDfdNet();
    const good = tensorBatchSource(bad, { batchSize: 8, shuffle: false });
    const { trainer } = compose({ task: new DfdTask(model), data: good, options: { ...opts, epochs: 2 }, checkpoints: new FsCheckpointStore(dir), plugins: [rec] });
    const before = weights(model);
    const result = await trainer.run();
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/non-finite loss NaN .* at epoch 1, step 2/);
    expect(rec.of('error')[0]!.message).toMatch(/non-finite loss/);
    expect(rec.of('runEnd')[0]).toMatchObject({ status: 'failed' });
    const ckpt = new FsCheckpointStore(dir).load();
    expect(ckpt.meta.globalStep).toBe(0);
    for (const t of ckpt.tensors.values()) expect(Array.from(t.data).every(Number.isFinite)).toBe(true);
    // The model in memory took the first (finite) step only, never the NaN one.
    expect(Object.values(weights(model)).flat().every(Number.isFinite)).toBe(true);
    expect(weights(model)['classifier.bias']).not.toEqual(before['classifier.bias']);
  });

  it('keeps tf.memory().numTensors flat over 50 steps', async () => {
    const small = toySamples(10, 6, 1);
    const model = new TinyDfdNet({ miDims: [3] });
    const eife = new TinyEife([{ name: 'a', classes: 2 }], 3);
    const counts: number[] = [];
    const probe: DfdPlugin = { name: 'probe', setup: (ctx) => ctx.on('batchEnd', () => void counts.push(tf.memory().numTensors)) };
    const data = tensorBatchSource(small, { batchSize: 2, augment: (x, rng) => tf.add(x, rng.normal(0, 0.1)) });
    const { trainer } = compose({ task: new DfdTask(model, [eife]), data, options: { ...opts, epochs: 10 }, plugins: [probe] });
    await trainer.run();
    expect(counts).toHaveLength(50);
    expect(counts[49]).toBe(counts[1]);
  });

  it('micro-batches: gradients summed over 3 micro-batches give the whole-batch run (losses, accuracy, weights); tensors stay flat', async () => {
    const run = async (microBatch?: number) => {
      const model = new TinyDfdNet({ miDims: [4, 4] });
      const eifes = [new TinyEife([{ name: 'a', classes: 2 }], 4, 3), new TinyEife([{ name: 'b', classes: 3 }], 4, 4)];
      const data = tensorBatchSource(samples, { batchSize: 8, seed: 5, shuffle: true });
      const rec = new Recorder();
      const counts: number[] = [];
      const probe: DfdPlugin = { name: 'probe', setup: (ctx) => ctx.on('batchEnd', () => void counts.push(tf.memory().numTensors)) };
      const { trainer } = compose({ task: new DfdTask(model, eifes), data, options: { ...opts, epochs: 2, microBatch }, plugins: [rec, probe], seed: 9 });
      await trainer.run();
      const params = Object.fromEntries(model.namedParameters().map(([n, v]) => [n, Array.from(v.dataSync())]));
      return { params, batches: rec.of('batchEnd'), counts };
    };
    const whole = await run();
    const micro = await run(3);
    expect(micro.batches).toHaveLength(6);
    micro.batches.forEach((b, i) => {
      const w = whole.batches[i]!;
      for (const k of ['total', 'cls', 'mi'] as const) expect(b.loss[k]).toBeCloseTo(w.loss[k]!, 5);
      expect(b.loss.mi).toBeGreaterThan(0);
      expect(b.accuracy).toBe(w.accuracy);
    });
    for (const [name, values] of Object.entries(whole.params)) {
      const got = micro.params[name]!;
      values.forEach((v, j) => expect(got[j]).toBeCloseTo(v, 5));
    }
    // Training moved the weights, so the comparison above is not between two untouched inits.
    const init = new TinyDfdNet({ miDims: [4, 4] });
    const moved = init.namedParameters().some(([n, v]) => Array.from(v.dataSync()).some((x, j) => Math.abs(x - whole.params[n]![j]!) > 1e-3));
    init.dispose();
    expect(moved).toBe(true);
    expect(micro.counts[5]).toBe(micro.counts[1]);
  });

  it('an XNNPACK failure (wasm heap full) stops the run before the step is applied, with what to change', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'dfd-xnn-'));
    const rec = new Recorder();
    let before: Record<string, number[]> = {};
    rec.onBatch = (e) => {
      if (e.globalStep === 2) {
        before = weights(model);
        // What the wasm module prints when XNNPACK cannot allocate an operator.
        const orig = process.stderr.write.bind(process.stderr);
        process.stderr.write = (() => true) as typeof process.stderr.write;
        noteWasmOutput('XNN status for xnn_create_convolution2d_nhwc_f32 is not successful. Got status 6. Use -c dbg to see XNN logs.');
        process.stderr.write = orig;
      }
    };
    const { trainer, model } = setup(runDir, [rec]);
    const result = await trainer.run();
    expect(result.status).toBe('failed');
    expect(result.globalStep).toBe(2);
    expect(result.reason).toMatch(/the wasm backend failed inside XNNPACK at epoch 1, step 3 \(xnn_create_convolution2d_nhwc_f32: status 6 \(out of memory\)\); the weights were not updated/);
    expect(result.reason).toMatch(/--micro-batch 32/);
    expect(weights(model)).toEqual(before);
    expect(rec.of('error').at(-1)?.message).toBe(result.reason);
  });

  it('a wasm kernel failing mid-step (WasmKernelFailure) ends the run failed at once; buffers and weights are those before the step', async () => {
    const rec = new Recorder();
    const model = new TinyDfdNet({ miDims: [4, 4] });
    const eifes = [new TinyEife([{ name: 'a', classes: 2 }], 4, 3), new TinyEife([{ name: 'b', classes: 3 }], 4, 4)];
    let calls = 0;
    let before: Record<string, number[]> = {};
    const forward = model.forward.bind(model);
    model.forward = (x, o) => {
      if (o.training && ++calls === 3) {
        before = weights(model);
        forward(x, o); // updates the BN-like running buffer, as a real forward would before failing
        throw new WasmKernelFailure('Conv2D', ['xnn_create_convolution2d_nhwc_f32: status 6 (out of memory)']);
      }
      return forward(x, o);
    };
    const data = tensorBatchSource(samples, { batchSize: 8, seed: 5, shuffle: true });
    const { trainer } = compose({ task: new DfdTask(model, eifes), data, options: opts, plugins: [rec], seed: 9 });
    const numTensors = tf.memory().numTensors;
    const result = await trainer.run();
    expect(result.status).toBe('failed');
    expect(result.globalStep).toBe(2);
    expect(result.reason).toMatch(/^the wasm backend failed inside XNNPACK at epoch 1, step 3 \(xnn_create_convolution2d_nhwc_f32: status 6 \(out of memory\)\); the weights were not updated/);
    expect(weights(model)).toEqual(before);
    expect(rec.of('error').at(-1)?.message).toBe(result.reason);
    expect(tf.memory().numTensors).toBeLessThanOrEqual(numTensors);
  });

  it('stage 1: the EIFE loss is the sum of the factor cross-entropies', async () => {
    const rec = new Recorder();
    const model = new TinyEife([{ name: 'a', classes: 2 }, { name: 'b', classes: 3 }]);
    const data = tensorBatchSource(samples, { batchSize: 12 });
    const { trainer } = compose({ task: new EifeTask(model, ['a', 'b']), data, options: { ...opts, epochs: 1 }, plugins: [rec] });
    await trainer.run();
    for (const b of rec.of('batchEnd')) expect(b.loss.total).toBeCloseTo(b.loss.ce_a! + b.loss.ce_b!, 5);
  });

  it('resume is exact with the @dfd/datasets loader (augmentation on), stopped by trainer.requestStop (the SIGINT path)', async () => {
    const train = createSyntheticDataset('studio', { train: 12, test: 0, size: 12 }).splits.train!;
    const make = (runDir: string, plugins: DfdPlugin[], resume: boolean) => {
      const model = new TinyDfdNet({ miDims: [3] });
      const loader = createLoader(train, { batchSize: 4, transform: trainTransform({ size: 8 }), seed: 3, prefetch: 1 });
      const { trainer } = compose({ task: new DfdTask(model, [new TinyEife([{ name: 'a', classes: 2 }], 3)]), data: loaderBatchSource(loader), options: { ...opts, epochs: 2, resume }, checkpoints: new FsCheckpointStore(runDir), plugins });
      return { trainer, model };
    };
    const full = make(mkdtempSync(join(tmpdir(), 'dfd-lf-')), [], false);
    const fullResult = await full.trainer.run();
    const dir = mkdtempSync(join(tmpdir(), 'dfd-lr-'));
    let first: ReturnType<typeof make> | undefined = undefined;
    const sigint: DfdPlugin = { name: 'sigint', setup: (ctx) => ctx.on('batchEnd', (e) => void (e.globalStep === 2 && first!.trainer.requestStop('SIGINT'))) };
    const rec = new Recorder();
    first = make(dir, [sigint, rec], false);
    const r1 = await first.trainer.run();
    expect(r1).toMatchObject({ status: 'stopped', reason: 'SIGINT', globalStep: 2 });
    expect(rec.of('runEnd')[0]).toMatchObject({ status: 'stopped', reason: 'SIGINT' });
    const second = make(dir, [], true);
    const r2 = await second.trainer.run();
    expect(r2.globalStep).toBe(6);
    expect(r2.history.map((h) => h.loss)).toEqual(fullResult.history.map((h) => h.loss));
    expect(weights(second.model)).toEqual(weights(full.model));
  });
});
