export { BackendUnavailableError } from './errors.js';
export {
  BACKEND_NAMES,
  parseThreadCount,
  probeBackends,
  useBackend,
  type BackendName,
  type BackendProbe,
  type UseBackendOptions,
  type UsedBackend,
} from './backends.js';
export { ensureBackend } from './ensure.js';
export { silenceCpuBanner } from './registry.js';
export { registerGradients } from './gradients.js';
export { registerWasmTrainingKernels, unregisterWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmTrainingKernel } from './wasm-kernels.js';
export { guardWasmKernels, noteWasmOutput, takeWasmFailures, WasmKernelFailure } from './wasm-node.js';
export {
  clearWinogradCache,
  prepareWasmWinograd,
  setWasmWinograd,
  setWasmWinogradTile,
  setWasmWinogradTraining,
  wasmWinogradEnabled,
  wasmWinogradTile,
  wasmWinogradTraining,
  winogradStats,
  winogradTransformThreads,
  type PrepareWinogradOptions,
  type WinogradTile,
} from './winograd.js';
