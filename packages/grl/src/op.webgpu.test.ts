import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, it } from 'vitest';
import { gradientReversalSuite } from './test-utils/grad-check.js';

// The same gradient checks on WebGPU through Dawn (the `webgpu` npm package). Without a GPU,
// Debian chromium's SwiftShader gives Dawn a CPU Vulkan adapter (docs/ENVIRONMENT.md). Runs only
// where both packages and an adapter exist; the skip reason is printed.
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

async function setUpWebgpu(): Promise<string | undefined> {
  let webgpu: { create: (flags: string[]) => { requestAdapter(): Promise<unknown> }; globals: object };
  try {
    const name = 'webgpu';
    webgpu = (await import(name)) as typeof webgpu;
  } catch {
    return "the 'webgpu' npm package is not installed";
  }
  // Try a real GPU first when the machine shows one (probing without one only prints Vulkan errors).
  const hasGpu = existsSync('/dev/dri') || existsSync('/dev/nvidia0');
  let gpu = hasGpu || process.env.VK_ICD_FILENAMES ? webgpu.create([]) : undefined;
  if (!(await gpu?.requestAdapter()) && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpu = webgpu.create([]);
  }
  if (!gpu) return 'no GPU device and no SwiftShader Vulkan ICD';
  if (!(await gpu.requestAdapter())) return 'no WebGPU adapter (no GPU and no SwiftShader Vulkan ICD)';
  Object.assign(globalThis, webgpu.globals);
  (globalThis as { navigator?: unknown }).navigator = { gpu };
  try {
    const backend = '@tensorflow/tfjs-backend-webgpu';
    await import(backend);
  } catch {
    return '@tensorflow/tfjs-backend-webgpu is not installed';
  }
  return (await tf.setBackend('webgpu')) ? undefined : "tf.setBackend('webgpu') failed";
}

const unavailable = await setUpWebgpu();
if (unavailable) {
  console.warn(`[grl] skipping the WebGPU gradient checks: ${unavailable}`);
  describe('gradientReversal on the webgpu backend', () => it.skip(unavailable, () => {}));
} else {
  gradientReversalSuite('webgpu', { fdTolerance: 2e-4 });
}
