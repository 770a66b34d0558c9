import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TOKENS, type DfdEvent, type DfdPlugin, type PluginHost } from '@dfd/core';
import { FsCheckpointStore } from './checkpoint.js';
import { CheckpointError, RunFolderError, TrainingFailedError, TrainingSetupError } from './errors.js';
import { LOCK_FILE } from './run-folder.js';
import { createTrainer } from './run.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const config = (out: string, extra: { epochs?: number; lr?: number } = {}) => ({
  source: 'synthetic:studio?train=16&test=0&size=16',
  targets: ['wild=synthetic:wild?train=0&test=4&size=16'],
  variant: 'base' as const,
  out,
  epochs: extra.epochs ?? 2,
  model: { width: 0.0625, inputSize: 16 },
  optimizer: { lr: { heads: extra.lr ?? 0.01 } },
  data: { batchSize: 4, evalBatchSize: 8 },
  // Nothing the plugins of these tests (a fixed list) do not deliver: no metrics log, constant rates.
  console: false,
  jsonl: false,
  schedule: { cosine: false as const },
  seed: 1,
});

function recorder(): DfdPlugin & { events: DfdEvent[] } {
  const events: DfdEvent[] = [];
  return { name: 'rec', events, setup: (ctx) => ctx.on('*', (e) => void events.push(e)) };
}

function stopAfterEpoch(n: number): DfdPlugin {
  let ended = 0;
  return { name: 'stop', setup: (ctx) => ctx.on('epochEnd', () => void (++ended === n && ctx.requestStop('test'))) };
}

function allCheckpointsFinite(out: string): boolean {
  const dir = join(out, 'checkpoints');
  return readdirSync(dir)
    .filter((n) => n.startsWith('step-'))
    .every((n) => new Float32Array(new Uint8Array(readFileSync(join(dir, n, 'tensors.bin'))).buffer).every(Number.isFinite));
}

describe('a failed run never replaces a good model or report (issue 17)', () => {
  it('a diverging run (learning rate 1e6) fails with TrainingFailedError, writes no model or report, and no checkpoint holds NaN', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-diverge-'));
    const run = await createTrainer(config(out, { lr: 1e6, epochs: 3 }));
    const err = await run.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingFailedError);
    expect((err as Error).message).toMatch(/^training failed: (non-finite loss|the weights became non-finite).*nothing in .*model or the report was replaced/);
    expect((err as TrainingFailedError).result.status).toBe('failed');
    expect(existsSync(join(out, 'model'))).toBe(false);
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    expect(allCheckpointsFinite(out)).toBe(true);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  it('a resumed run that diverges leaves the model and report of the interrupted run as they were', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-diverge-resume-'));
    await (await createTrainer(config(out, { epochs: 3 }), { plugins: [stopAfterEpoch(1)] })).run();
    const model = readFileSync(join(out, 'model', 'weights.bin'));
    const report = readFileSync(join(out, 'report.json'));
    // A resume must keep the run's settings (issue 24, case 9): the divergence is injected, infinite weights after the next epoch.
    const resumed = await createTrainer(config(out, { epochs: 3 }), { resume: true });
    const poison: DfdPlugin = {
      name: 'poison',
      setup: (ctx) =>
        ctx.on('epochEnd', () => {
          const [, w] = resumed.trainer.task.model.namedParameters().find(([n]) => n === 'classifier.bias')!;
          w.assign(tf.tidy(() => tf.fill(w.shape, Number.POSITIVE_INFINITY)));
        }),
    };
    resumed.container.resolve<PluginHost>(TOKENS.PluginHost).use(poison);
    const err = await resumed.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingFailedError);
    expect(readFileSync(join(out, 'model', 'weights.bin')).equals(model)).toBe(true);
    expect(readFileSync(join(out, 'report.json')).equals(report)).toBe(true);
    expect(allCheckpointsFinite(out)).toBe(true);
  });

  it('a resume from a checkpoint corrupted in place (same size) falls back to the previous intact one, saying so', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-corrupt-'));
    const first = await (await createTrainer(config(out, { epochs: 3 }), { plugins: [stopAfterEpoch(2)] })).run();
    expect(first.result).toMatchObject({ status: 'stopped', epochsDone: 2 });
    const store = new FsCheckpointStore(out);
    const latest = store.latestPath();
    const previous = join(store.dir, store.folders()[1]!);
    const bin = readFileSync(join(latest, 'tensors.bin'));
    for (let i = 0; i < bin.length; i += 7) bin[i] = (bin[i]! * 31 + 17) & 255;
    writeFileSync(join(latest, 'tensors.bin'), bin);
    const rec = recorder();
    const resumed = await (await createTrainer(config(out, { epochs: 3 }), { resume: true, plugins: [rec] })).run();
    const warnings = rec.events.filter((e): e is Extract<DfdEvent, { type: 'warning' }> => e.type === 'warning').map((e) => e.message);
    expect(warnings, JSON.stringify(warnings)).toHaveLength(2);
    expect(warnings.some((m) => m.includes(`skipped checkpoint ${latest}`) && m.includes('is corrupted'))).toBe(true);
    expect(warnings[1]).toBe(`resuming from ${previous}, the newest intact checkpoint (1 newer one(s) unreadable)`);
    expect(previous).toMatch(/step-0000000[1-9]$/);
    expect(rec.events.find((e) => e.type === 'runStart')).toMatchObject({ startEpoch: 1 });
    expect(resumed.result).toMatchObject({ status: 'completed', epochsDone: 3 });
  });

  it('when no checkpoint is intact, --resume fails clearly and the model and report of the interrupted run stay as they were', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-corrupt-all-'));
    await (await createTrainer(config(out, { epochs: 3 }), { plugins: [stopAfterEpoch(1)] })).run();
    const model = readFileSync(join(out, 'model', 'weights.bin'));
    const report = readFileSync(join(out, 'report.json'));
    const store = new FsCheckpointStore(out);
    for (const n of store.folders()) {
      const p = join(store.dir, n, 'tensors.bin');
      const b = readFileSync(p);
      b[b.length - 1] ^= 0xff;
      writeFileSync(p, b);
    }
    const err = await (await createTrainer(config(out, { epochs: 3 }), { resume: true })).run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/no intact checkpoint in .*corrupted.*corrupted/);
    expect(readFileSync(join(out, 'model', 'weights.bin')).equals(model)).toBe(true);
    expect(readFileSync(join(out, 'report.json')).equals(report)).toBe(true);
  });
});

describe('weights that become non-finite with a finite loss (issue 17)', () => {
  it('are never checkpointed: the run fails naming them, the last checkpoint stays the previous good one', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-nanw-'));
    const run = await createTrainer(config(out, { epochs: 3 }));
    let ended = 0;
    const poison: DfdPlugin = {
      name: 'poison',
      setup: (ctx) =>
        ctx.on('epochEnd', () => {
          if (++ended !== 2) return;
          const [, w] = run.trainer.task.model.namedParameters().find(([n]) => n === 'classifier.bias')!;
          w.assign(tf.tidy(() => tf.fill(w.shape, Number.POSITIVE_INFINITY)));
        }),
    };
    run.container.resolve<PluginHost>(TOKENS.PluginHost).use(poison);
    const err = await run.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingFailedError);
    expect((err as Error).message).toMatch(/the weights became non-finite \(\d+ NaN or infinite values in classifier\.bias\) by epoch 2.*no checkpoint was written with them, the last checkpoint is .*step-/);
    expect(new FsCheckpointStore(out).loadNewestIntact().checkpoint.meta.epoch).toBe(1);
    expect(allCheckpointsFinite(out)).toBe(true);
    expect(existsSync(join(out, 'model'))).toBe(false);
  });
});

describe('run folder lock and overwrite (issue 17)', () => {
  it('a second run into a folder in use is refused naming the holder; a finished folder needs --resume or --overwrite', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-two-'));
    const a = await createTrainer(config(out, { epochs: 1 }));
    await expect(createTrainer(config(out, { epochs: 1 }))).rejects.toThrow(RunFolderError);
    await expect(createTrainer(config(out, { epochs: 1 }))).rejects.toThrow(new RegExp(`is in use by another run: process ${process.pid} on `));
    const { report } = await a.run();
    expect(report.status).toBe('completed');
    const before = readFileSync(join(out, 'model', 'weights.bin'));
    await expect(createTrainer(config(out, { epochs: 1 }))).rejects.toThrow(/already holds a run \(config\.json, checkpoints, model, report\.json, report\.md\); continue it with --resume/);
    expect(readFileSync(join(out, 'model', 'weights.bin')).equals(before)).toBe(true);
    const rec = recorder();
    const again = await (await createTrainer({ ...config(out, { epochs: 1 }), seed: 2 }, { overwrite: true, plugins: [rec] })).run();
    expect(again.result.status).toBe('completed');
    expect(rec.events.some((e) => e.type === 'warning' && /--overwrite: removed the previous run's config\.json, checkpoints/.test(e.message))).toBe(true);
    expect(readFileSync(join(out, 'model', 'weights.bin')).equals(before)).toBe(false);
  });
});

describe('smaller cases (issue 17)', () => {
  it('a source with no training split says why (its splits, the classes it skipped)', async () => {
    const sharp = (await import('sharp')).default;
    const root = mkdtempSync(join(tmpdir(), 'dfd-contempt-'));
    mkdirSync(join(root, 'train', 'contempt'), { recursive: true });
    for (let i = 0; i < 2; i++) await sharp(Buffer.alloc(16 * 16 * 3, 9), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, 'train', 'contempt', `${i}.png`));
    const err = await createTrainer({ ...config(mkdtempSync(join(tmpdir(), 'dfd-nosplit-'))), source: `folder:${root}`, targets: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingSetupError);
    expect((err as Error).message).toBe(`source folder:${root} has no training split: it has no samples at all; folder: skipped class folder 'train/contempt' (2 images): not one of the 7 expressions.`);
    const synthetic = await createTrainer({ ...config(mkdtempSync(join(tmpdir(), 'dfd-nosplit-'))), source: 'synthetic:studio?train=0&test=4&size=16' }).catch((e: unknown) => e);
    expect((synthetic as Error).message).toBe('source synthetic:studio?train=0&test=4&size=16 has no training split: it has test (4).');
  });

  it('--eife with a variant that has no MI heads is said, not ignored silently', async () => {
    const rec = recorder();
    await (await createTrainer({ ...config(mkdtempSync(join(tmpdir(), 'dfd-eife-base-')), { epochs: 1 }), eife: ['/nowhere/eife'], jsonl: true, schedule: { cosine: { tMax: 10 } } }, { plugins: [rec] })).run();
    expect(rec.events).toContainEqual(expect.objectContaining({ type: 'warning', message: 'eife: 1 extractor(s) given (--eife /nowhere/eife) but variant base uses none; only att+eifp has MI heads. They were not loaded.' }));
    // A fixed plugin list does not read the config: what the config asks for and no plugin delivers is said.
    const said = rec.events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
    expect(said).toContainEqual(expect.stringMatching(/^the config asks for jsonl: true \(metrics\.jsonl in the run folder\), but no plugin named 'jsonl-logger' is in this run; pass plugins: \(config\) => createDefaultPlugins\(config\)/));
    expect(said).toContainEqual(expect.stringMatching(/^the config asks for schedule\.cosine .* no plugin named 'lr-scheduler'/));
  });

  it('config plugins with a fixed plugin list are refused (they need the caller\'s registry), not ignored', async () => {
    const err = await createTrainer({ ...config(mkdtempSync(join(tmpdir(), 'dfd-cfgplug-'))), plugins: [{ name: 'early-stopping' }] }, { plugins: [] }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^plugins: the config names plugin\(s\) early-stopping, but the caller passed a fixed plugin list; pass plugins: \(config\) => createDefaultPlugins\(config\)/);
  });

  it('config errors name the config file', async () => {
    const err = await createTrainer({ ...config(mkdtempSync(join(tmpdir(), 'dfd-cfg-'))), variant: 'huge' as never }, { configFile: 'run.yaml' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^invalid config \(run\.yaml with the command-line options\):\n {2}variant: /);
  });
});

describe('image files are checked before step 1 (issue 17)', () => {
  async function folderDataset(): Promise<string> {
    const sharp = (await import('sharp')).default;
    const root = mkdtempSync(join(tmpdir(), 'dfd-badimg-data-'));
    for (const cls of ['happy', 'sad']) {
      mkdirSync(join(root, 'train', cls), { recursive: true });
      for (let i = 0; i < 4; i++) await sharp(Buffer.alloc(16 * 16 * 3, 40 * i), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, 'train', cls, `${i}.png`));
    }
    writeFileSync(join(root, 'train', 'happy', 'empty.jpg'), '');
    const png = readFileSync(join(root, 'train', 'sad', '0.png'));
    writeFileSync(join(root, 'train', 'sad', 'cut.png'), png.subarray(0, 40));
    return root;
  }
  const folderConfig = (data: string, out: string, badImages?: 'fail' | 'skip') => ({
    ...config(out, { epochs: 1 }),
    source: `folder:${data}`,
    targets: [],
    data: { batchSize: 4, evalBatchSize: 8, ...(badImages ? { badImages } : {}) },
  });

  it('every bad file is reported at once and nothing is trained; --bad-images skip leaves them out, counted and listed', async () => {
    process.env.DFD_CACHE_DIR = mkdtempSync(join(tmpdir(), 'dfd-cache-'));
    const data = await folderDataset();
    const out = mkdtempSync(join(tmpdir(), 'dfd-badimg-'));
    const err = await createTrainer(folderConfig(data, out)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingSetupError);
    const message = (err as Error).message;
    expect(message).toContain(`2 of 10 image file(s) of folder:${data} cannot be read (nothing was trained):`);
    expect(message).toContain(`${join(data, 'train', 'happy', 'empty.jpg')}: empty file (0 bytes)`);
    expect(message).toContain(`${join(data, 'train', 'sad', 'cut.png')}: truncated PNG (no IEND chunk)`);
    expect(message).toMatch(/pass --bad-images skip/);
    expect(readdirSync(out)).toEqual([]);
    const rec = recorder();
    const { report, result } = await (await createTrainer(folderConfig(data, out, 'skip'), { plugins: [rec] })).run();
    expect(result.status).toBe('completed');
    expect(report.skippedImages).toEqual({ count: 2, list: 'skipped-images.txt' });
    expect(readFileSync(join(out, 'skipped-images.txt'), 'utf8').trim().split('\n').sort()).toEqual([
      `${join(data, 'train', 'happy', 'empty.jpg')}\tempty file (0 bytes)`,
      `${join(data, 'train', 'sad', 'cut.png')}\ttruncated PNG (no IEND chunk)`,
    ]);
    expect(rec.events.some((e) => e.type === 'warning' && e.message.includes('--bad-images skip: left out 2 unreadable image file(s)'))).toBe(true);
  });
});
