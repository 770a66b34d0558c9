import * as tf from '@tensorflow/tfjs-core';

/**
 * The backend instance `tfName` when it is initialised, else undefined. Unlike tf.findBackend,
 * never starts initialising it: findBackend('wasm') on tfjs's own registration would load a
 * second wasm module in the background that later lands in the registry next to dfd's.
 */
export function initialisedBackend(tfName: string): tf.KernelBackend | undefined {
  return (tf.engine() as unknown as { registry: Record<string, tf.KernelBackend | undefined> }).registry[tfName];
}
