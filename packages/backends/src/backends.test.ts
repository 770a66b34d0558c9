import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { BackendUnavailableError, probeBackends, useBackend } from './index.js';

describe('useBackend', () => {
  it('selects cpu and computes on it', async () => {
    const used = await useBackend('cpu');
    expect(used.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])));
    expect(Array.from(await y.data())).toEqual([17, 39]);
    tf.dispose(y);
  });

  it('selects wasm, computes on it and registers the training kernels', async () => {
    const used = await useBackend('wasm');
    expect(used.name).toBe('wasm');
    expect(used.reason).toMatch(/SIMD/);
    expect(tf.getBackend()).toBe('wasm');
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])));
    expect(Array.from(await y.data())).toEqual([17, 39]);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    tf.dispose(y);
  });

  it('explains what to install for a missing native backend', async () => {
    const err = await useBackend('tensorflow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err).toBeInstanceOf(DfdError);
    const e = err as BackendUnavailableError;
    expect(e.code).toBe('E_BACKEND_UNAVAILABLE');
    expect(e.backend).toBe('tensorflow');
    expect(e.message).toContain('@tensorflow/tfjs-node is not installed');
    expect(e.message).toContain('npm install @tensorflow/tfjs-node@^4.22.0');
    expect(e.message).toContain('downloads libtensorflow at install time');

    const gpu = (await useBackend('tensorflow-gpu').catch((x: unknown) => x)) as BackendUnavailableError;
    expect(gpu).toBeInstanceOf(BackendUnavailableError);
    expect(gpu.message).toContain('@tensorflow/tfjs-node-gpu');
    expect(gpu.message).toContain('CUDA 11.2 and cuDNN 8.1');
  });

  it('rejects an unknown name with the list of valid ones', async () => {
    await expect(useBackend('tpu' as 'cpu')).rejects.toThrow(/unknown backend 'tpu': use one of auto, cpu, wasm, webgpu, tensorflow, tensorflow-gpu/);
  });

  it('auto picks wasm here and says why', async () => {
    await useBackend('cpu');
    const used = await useBackend('auto');
    expect(used.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(used.reason).toMatch(/^auto picked wasm/);
    expect(used.reason).toContain('tensorflow-gpu (package @tensorflow/tfjs-node-gpu is not installed');
    expect(used.reason).toContain('tensorflow (package @tensorflow/tfjs-node is not installed');
    expect(used.reason).toContain('webgpu (not a browser');
    expect(used.reason).toContain('training kernels');
  });
});

describe('probeBackends', () => {
  it('lists all five backends with reasons and keeps the active backend', async () => {
    await useBackend('cpu');
    const rows = await probeBackends();
    expect(tf.getBackend()).toBe('cpu');
    expect(rows.map((r) => r.name)).toEqual(['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(by.cpu).toMatchObject({ available: true });
    expect(by.wasm).toMatchObject({ available: true });
    expect(by.wasm?.note).toMatch(/XNNPACK, SIMD on/);
    for (const name of ['tensorflow-gpu', 'tensorflow']) {
      expect(by[name]?.available).toBe(false);
      expect(by[name]?.reason).toMatch(/npm install @tensorflow\/tfjs-node/);
    }
    // WebGPU in Node depends on the machine (Dawn + a Vulkan driver); either way the row explains itself.
    if (by.webgpu?.available) expect(by.webgpu.note).toMatch(/^WebGPU \(/);
    else expect(by.webgpu?.reason).toContain('npm install @tensorflow/tfjs-backend-webgpu@^4.22.0 webgpu');
  });
});
