import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointStore } from './checkpoint.js';

const meta = (globalStep: number, stepInEpoch = 0) => ({
  stage: 'dfd',
  runId: 'r',
  epoch: 1,
  stepInEpoch,
  globalStep,
  rng: [1, 2, 3, 4],
  loader: null,
  plugins: { es: { wait: 2 } },
  optimizer: { groups: [], steps: { w: globalStep } },
  epochAccumulator: {},
  history: [{ loss: 1.5 }],
});

describe('CheckpointStore', () => {
  it('round-trips tensors and metadata, moves the latest pointer, prunes old folders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const store = new CheckpointStore(dir, 2);
    expect(store.exists()).toBe(false);
    expect(() => store.load()).toThrow(/no checkpoint in .*missing 'latest'/);
    for (const step of [3, 6, 9]) {
      store.save(meta(step), new Map([
        ['model/w', { shape: [2, 2], dtype: 'float32' as const, data: Float32Array.from([step, -1.5, 0.25, 1e-8]) }],
        ['model/n', { shape: [1], dtype: 'int32' as const, data: Int32Array.from([step]) }],
      ]));
    }
    const c = store.load();
    expect(c.meta).toMatchObject({ format: 'dfd-checkpoint', globalStep: 9, plugins: { es: { wait: 2 } }, rng: [1, 2, 3, 4] });
    expect(Array.from(c.tensors.get('model/w')!.data)).toEqual([9, -1.5, 0.25, Math.fround(1e-8)]);
    expect(c.tensors.get('model/n')!.data).toBeInstanceOf(Int32Array);
    expect(readFileSync(join(dir, 'checkpoints', 'latest'), 'utf8').trim()).toBe('step-00000009');
    expect(readdirSync(join(dir, 'checkpoints')).sort()).toEqual(['latest', 'step-00000006', 'step-00000009']);
  });

  it('a crash mid-write (leftover temp folder) leaves the previous checkpoint in force', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const store = new CheckpointStore(dir);
    store.save(meta(4), new Map([['model/w', { shape: [1], dtype: 'float32' as const, data: Float32Array.from([4]) }]]));
    // What a kill during the next save leaves behind: a temp folder with a partial file.
    const tmp = join(dir, 'checkpoints', 'step-00000008.tmp-999');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'tensors.bin'), Buffer.alloc(2));
    expect(store.load().meta.globalStep).toBe(4);
    // A truncated tensors.bin is reported, not read as garbage.
    const path = store.latestPath();
    writeFileSync(join(path, 'tensors.bin'), Buffer.alloc(2));
    expect(() => store.load()).toThrow(/tensors\.bin is truncated at tensor 'model\/w'/);
    expect(existsSync(tmp)).toBe(true);
  });
});
