import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { BACKEND_NAMES, useBackend, type BackendName, type UseBackendOptions, type UsedBackend } from './backends.js';
import { registerGradients } from './gradients.js';
import { silenceCpuBanner } from './registry.js';

/** The tfjs backend each dfd backend name runs as. */
const TF_NAME: Record<BackendName, string> = { 'tensorflow-gpu': 'tensorflow', tensorflow: 'tensorflow', webgpu: 'webgpu', wasm: 'wasm', cpu: 'cpu' };

let queue: Promise<unknown> = Promise.resolve();

/**
 * Makes sure a tfjs backend is active before work starts, so that code which never called
 * {@link useBackend} still runs. `auto` (the default) keeps the backend that is already active
 * (or the one tfjs would start from what the application registered, e.g. after
 * `import '@tensorflow/tfjs-backend-cpu'`) and otherwise selects one with `useBackend('auto')`;
 * a named backend is selected unless it is the active one. Gradients are registered unless
 * `opts.gradients` is false. Calls are serialised, so concurrent entry points select once.
 * `createTrainer`, `evaluateModelDir` and the dataset loaders call it.
 */
export function ensureBackend(name: string = 'auto', opts: UseBackendOptions = {}): Promise<UsedBackend> {
  const run = queue.then(() => select(name, opts));
  queue = run.catch(() => undefined);
  return run;
}

async function select(name: string, opts: UseBackendOptions): Promise<UsedBackend> {
  if (name !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new DfdError('E_BACKEND_UNKNOWN', `unknown backend '${name}': use one of auto, ${[...BACKEND_NAMES].reverse().join(', ')}`);
  }
  const engine = tf.engine();
  let active: string | null = engine.backendName ?? null;
  // Backends the application registered itself start the tfjs way (highest priority first).
  if (active == null && name === 'auto' && engine.backendNames().length > 0) {
    await tf.ready();
    active = engine.backendName ?? null;
  }
  if (active != null && (name === 'auto' || TF_NAME[name as BackendName] === active)) {
    if (opts.gradients !== false) await registerGradients();
    silenceCpuBanner();
    return { name: active, reason: 'already active' };
  }
  return useBackend(name as BackendName | 'auto', opts);
}
