import { mkdtemp, readdir, readFile, writeFile as realWriteFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it, vi } from 'vitest';

// writeFile fails with the system's own ENOSPC error (no path in it, as a full disk gives) for
// every weights.bin written while `full` is set.
const state = { full: false };
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...orig,
    writeFile: async (...args: Parameters<typeof orig.writeFile>) => {
      if (state.full && String(args[0]).endsWith('weights.bin')) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      return orig.writeFile(...args);
    },
  };
});

const { createDfdNet } = await import('./dfdnet.js');
const { saveModelDir } = await import('./node.js');
const { ModelWriteError } = await import('./errors.js');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('saveModelDir on a full disk (#24)', () => {
  it('names the folder, the file and ENOSPC, leaves no temporary files and keeps the old model', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dfd-enospc-'));
    const dir = join(root, 'model');
    const model = createDfdNet({ variant: 'base', width: 0.125, inputSize: 32 });
    await saveModelDir(model, dir);
    const before = await readFile(join(dir, 'model.json'), 'utf8');
    state.full = true;
    let err: unknown;
    try {
      await saveModelDir(model, dir);
    } catch (e) {
      err = e;
    } finally {
      state.full = false;
      model.dispose();
    }
    expect(err).toBeInstanceOf(ModelWriteError);
    expect((err as InstanceType<typeof ModelWriteError>).code).toBe('E_MODEL_WRITE');
    expect((err as Error).message).toBe(
      `cannot write the model folder ${dir} (weights.bin): no space left on the device (ENOSPC); nothing was replaced and no temporary files were left. Free space or write elsewhere, then run again.`,
    );
    expect(await readdir(root)).toEqual(['model']);
    expect(await readFile(join(dir, 'model.json'), 'utf8')).toBe(before);
  });

  it('a folder write that succeeds is unchanged by the wrapper', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dfd-enospc-'));
    await mkdir(join(root, 'x'));
    await realWriteFile(join(root, 'x', 'keep.txt'), 'a');
    const model = createDfdNet({ variant: 'base', width: 0.125, inputSize: 32 });
    await saveModelDir(model, join(root, 'm'));
    model.dispose();
    expect((await readdir(join(root, 'm'))).sort()).toEqual(['model.json', 'weights.bin']);
  });
});
