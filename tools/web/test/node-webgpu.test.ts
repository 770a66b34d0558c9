import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Rng } from '@dfd/core';
import { useBackend } from '@dfd/backends';
import { createDfdNet } from '@dfd/model';
import { softmax } from '../src/preprocess.js';
import { runTrainingDemo, TRAIN_DEMO_DEFAULTS } from '../src/train-core.js';
import { maxAbsDiff, TINY } from './fixtures.js';

// Without a GPU, Dawn (the `webgpu` package) runs on SwiftShader, the CPU Vulkan driver that
// Debian's chromium ships; the Vulkan loader reads this variable when Dawn first starts.
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;

describe('Node WebGPU backend (webgpu package, Dawn)', () => {
  let webgpuError: string | undefined;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    try {
      await useBackend('webgpu');
    } catch (err) {
      webgpuError = err instanceof Error ? err.message : String(err);
    }
    await tf.setBackend('cpu');
  });

  it('predicts the same probabilities as the CPU backend', async (ctx) => {
    if (webgpuError) {
      console.warn(`[dfd web] Node WebGPU test SKIPPED: no WebGPU adapter here: ${webgpuError}`);
      ctx.skip(`no WebGPU adapter: ${webgpuError}`);
    }
    const model = createDfdNet(TINY);
    const size = model.config.inputSize;
    const rng = new Rng(99);
    const input = Float32Array.from({ length: 2 * size * size * 3 }, () => rng.normal());
    const run = async () => {
      const logits = tf.tidy(() => model.forward(tf.tensor4d(input, [2, size, size, 3]), { training: false }).logits);
      const data = await logits.data();
      logits.dispose();
      return [softmax(data.slice(0, 7)), softmax(data.slice(7, 14))].flat();
    };
    const cpu = await run();
    await tf.setBackend('webgpu');
    try {
      expect(tf.getBackend()).toBe('webgpu');
      const gpu = await run();
      const before = tf.memory().numTensors;
      const again = await run();
      expect(tf.memory().numTensors, 'no tensors leak across predictions').toBe(before);
      const diff = maxAbsDiff(gpu, cpu);
      console.log(`[dfd web] Node WebGPU vs CPU probabilities: max |diff| = ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-3);
      expect(maxAbsDiff(again, gpu)).toBeLessThan(1e-6);
    } finally {
      await tf.setBackend('cpu');
      model.dispose();
    }
  });

  it('trains with the same first losses as the CPU backend', async (ctx) => {
    if (webgpuError) ctx.skip(`no WebGPU adapter: ${webgpuError}`);
    const opts = { ...TRAIN_DEMO_DEFAULTS, steps: 2, size: 32 };
    const losses = async () => {
      const out: number[] = [];
      const result = await runTrainingDemo(opts, (bus) => bus.subscribe('batchEnd', (e) => void out.push(e.loss.total)));
      expect(result.status).toBe('completed');
      return out;
    };
    const cpu = await losses();
    await tf.setBackend('webgpu');
    try {
      const before = tf.memory().numTensors;
      const gpu = await losses();
      expect(tf.memory().numTensors, 'the demo run leaves no tensors behind').toBe(before);
      const diff = maxAbsDiff(gpu, cpu);
      console.log(`[dfd web] Node WebGPU vs CPU training losses: ${gpu.map((l) => l.toFixed(5)).join(' ')}, max |diff| = ${diff.toExponential(2)}`);
      expect(gpu).toHaveLength(2);
      expect(diff).toBeLessThan(1e-3);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
