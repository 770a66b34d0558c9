import * as tf from '@tensorflow/tfjs-core';

/**
 * The backend instance `tfName` when it is initialised, else undefined. Unlike tf.findBackend,
 * never starts initialising it: findBackend('wasm') on tfjs's own registration would load a
 * second wasm module in the background that later lands in the registry next to dfd's.
 */
export function initialisedBackend(tfName: string): tf.KernelBackend | undefined {
  return (tf.engine() as unknown as { registry: Record<string, tf.KernelBackend | undefined> }).registry[tfName];
}

/**
 * tfjs-backend-cpu prints "install our node backend" on its first tensor in Node; dfd says which
 * backend it uses itself (`dfd info`, useBackend's reason), so the banner is switched off for
 * the cpu backend dfd selects or finds active.
 */
export function silenceCpuBanner(): void {
  if (tf.engine().backendName !== 'cpu') return;
  const cpu = tf.engine().findBackend('cpu') as (tf.KernelBackend & { firstUse?: boolean }) | null;
  if (cpu && cpu.firstUse === true) cpu.firstUse = false;
}
