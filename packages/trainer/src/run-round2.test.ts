import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, type DfdPlugin } from '@dfd/core';
import { writeFileAtomic } from './checkpoint.js';
import { EvaluationFailedError, TrainingSetupError } from './errors.js';
import { trainConfigSchema, validateConfig } from './config.js';
import { createTrainer, readRunConfig } from './run.js';

// Issue 24 (round 2), runs and checkpoints: each case of the hostile probe, reproduced.

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const config = (out: string, extra: Record<string, unknown> = {}) => ({
  source: 'synthetic:studio?train=16&test=0&size=16',
  targets: ['wild=synthetic:wild?train=0&test=4&size=16'],
  variant: 'base' as const,
  out,
  epochs: 2,
  model: { width: 0.0625, inputSize: 16 },
  optimizer: { lr: { heads: 0.01 } },
  data: { batchSize: 4, evalBatchSize: 8 },
  console: false,
  jsonl: false,
  schedule: { cosine: false as const },
  seed: 1,
  ...extra,
});

function stopAfterEpoch(n: number): DfdPlugin {
  let ended = 0;
  return { name: 'stop', setup: (ctx) => ctx.on('epochEnd', () => void (++ended === n && ctx.requestStop('test'))) };
}

describe('config.json (case 6)', () => {
  it('writeFileAtomic leaves the previous file whole and no temp file when the write fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-atomic-'));
    const path = join(dir, 'config.json');
    writeFileAtomic(path, '{"stage":"dfd"}\n');
    // The temp file cannot be created (a folder in its place): the write fails, config.json is untouched.
    mkdirSync(`${path}.tmp-${process.pid}`);
    expect(() => writeFileAtomic(path, 'x'.repeat(1000))).toThrow();
    expect(readFileSync(path, 'utf8')).toBe('{"stage":"dfd"}\n');
  });

  it('a run writes config.json through the atomic helper (no temp file left), and an empty or corrupt one is a ConfigError saying what to do', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-cfg-'));
    await (await createTrainer(config(out, { epochs: 1 }))).run();
    expect(readRunConfig(out).stage).toBe('dfd');
    expect(readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);
    for (const [text, why] of [['', /is empty/], ['{"stage": "dfd", "epo', /is not valid JSON/], ['[1]', /does not hold a JSON object/], ['{"stage": 3}', /has stage 3/]] as const) {
      writeFileSync(join(out, 'config.json'), text);
      const err = (() => {
        try {
          readRunConfig(out);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).toMatch(/start the run again with the same options and --out .* --overwrite/);
    }
  });
});

describe('--resume keeps the run settings (case 9)', () => {
  it('a resume with other epochs, lr and input size is refused, listing each field old -> new; the same settings resume', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-resume-diff-'));
    await (await createTrainer(config(out, { epochs: 3 }), { plugins: [stopAfterEpoch(1)] })).run();
    const saved = readFileSync(join(out, 'config.json'), 'utf8');
    const err = await createTrainer(config(out, { epochs: 5, optimizer: { lr: { heads: 0.5 } }, model: { width: 0.0625, inputSize: 24 } }), { resume: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toContain('epochs: 3 -> 5');
    expect(message).toContain('optimizer.lr.heads: 0.01 -> 0.5');
    expect(message).toContain('model.inputSize: 16 -> 24');
    expect(message).toMatch(/drop these options, or start a new run/);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(saved);
    // Only where it prints may change.
    const resumed = await (await createTrainer(config(out, { epochs: 3, console: false, jsonl: false }), { resume: true })).run();
    expect(resumed.result).toMatchObject({ status: 'completed', epochsDone: 3 });
    expect(resumed.report.config).toMatchObject({ epochs: 3 });
  });

  it('a resume at another width names the run width and the given one (poor message)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-resume-width-'));
    await (await createTrainer(config(out, { epochs: 2 }), { plugins: [stopAfterEpoch(1)] })).run();
    const err = await createTrainer(config(out, { model: { width: 0.125, inputSize: 16 } }), { resume: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('model.width: 0.0625 -> 0.125');
    expect(existsSync(join(out, 'model'))).toBe(true);
  });
});

describe('target images (case 15)', () => {
  async function targetFolder(): Promise<string> {
    const sharp = (await import('sharp')).default;
    const root = mkdtempSync(join(tmpdir(), 'dfd-target-data-'));
    for (const cls of ['happy', 'sad']) {
      mkdirSync(join(root, 'test', cls), { recursive: true });
      for (let i = 0; i < 2; i++) await sharp(Buffer.alloc(16 * 16 * 3, 60 * i + 10), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, 'test', cls, `${i}.png`));
    }
    return root;
  }

  it('a corrupt target image is found before step 1: nothing is trained', async () => {
    process.env.DFD_CACHE_DIR = mkdtempSync(join(tmpdir(), 'dfd-cache-'));
    const data = await targetFolder();
    writeFileSync(join(data, 'test', 'sad', 'cut.png'), readFileSync(join(data, 'test', 'sad', '0.png')).subarray(0, 40));
    const out = mkdtempSync(join(tmpdir(), 'dfd-target-bad-'));
    const err = await createTrainer(config(out, { epochs: 1, targets: [`real=folder:${data}`] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingSetupError);
    expect((err as Error).message).toContain(`of target real (folder:${data}) cannot be read (nothing was trained)`);
    expect((err as Error).message).toContain(`${join(data, 'test', 'sad', 'cut.png')}: truncated PNG`);
    expect(readdirSync(out)).toEqual([]);
  });

  it('an evaluation that fails after training keeps model/, says so, and --resume re-runs only the evaluation', async () => {
    process.env.DFD_CACHE_DIR = mkdtempSync(join(tmpdir(), 'dfd-cache-'));
    const data = await targetFolder();
    const victim = join(data, 'test', 'happy', '1.png');
    const saved = readFileSync(victim);
    const out = mkdtempSync(join(tmpdir(), 'dfd-target-late-'));
    // The file goes away during training (after the header check): the evaluation cannot read it.
    const remover: DfdPlugin = { name: 'remover', setup: (ctx) => ctx.on('epochEnd', () => rmSync(victim)) };
    const cfg = config(out, { epochs: 1, targets: [`real=folder:${data}`] });
    const err = await (await createTrainer(cfg, { plugins: [remover] })).run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvaluationFailedError);
    expect((err as Error).message).toContain(`the model was written to ${join(out, 'model')}, but the evaluation failed:`);
    expect((err as Error).message).toContain(`run 'dfd train --resume ${out}': it trains no epoch again`);
    expect(existsSync(join(out, 'model', 'model.json'))).toBe(true);
    expect(existsSync(join(out, 'report.json'))).toBe(false);
    writeFileSync(victim, saved);
    let steps = 0;
    const counter: DfdPlugin = { name: 'count', setup: (ctx) => ctx.on('batchEnd', () => void steps++) };
    const resumed = await (await createTrainer(cfg, { resume: true, plugins: [counter] })).run();
    expect(steps).toBe(0);
    expect(resumed.result).toMatchObject({ status: 'completed', epochsDone: 1 });
    expect(resumed.report.results.map((r) => r.target)).toEqual(['real']);
    expect(existsSync(join(out, 'report.json'))).toBe(true);
  });
});

describe('target names that would break report.md (poor message)', () => {
  it("a '|' or a line break in a target name is refused at config validation, naming the field and the flag", () => {
    for (const name of ['a|b', 'two\nlines', 'tab\there']) {
      const err = (() => {
        try {
          validateConfig(trainConfigSchema, { source: 'synthetic:studio', out: 'o', targets: [`${name}=synthetic:wild`] });
        } catch (e) {
          return e;
        }
      })();
      expect(err, name).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/targets\.0\.name: a target name \(--target NAME=SPEC\) may not contain '\|', a line break/);
    }
    expect(validateConfig(trainConfigSchema, { source: 'synthetic:studio', out: 'o', targets: ['wild-2 (test)=synthetic:wild'] }).targets[0]!.name).toBe('wild-2 (test)');
  });
});
