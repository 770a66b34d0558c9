export { BackendUnavailableError, WasmVersionError } from './errors.js';
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
export { formatUncaughtError, replaceEmscriptenProcessHandlers } from './process-errors.js';
export { silenceCpuBanner } from './registry.js';
export { registerGradients } from './gradients.js';
export { DFD_FLAGS, type DfdFlag, type DfdFlagName, type WinogradTile } from './flags.js';
export { noteTfjsWasm, TFJS_WASM_VERSION, type TfjsWasmModule } from './tfjs-wasm.js';
export { registerWasmTrainingKernels, unregisterWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmTrainingKernel } from './wasm-kernels.js';
export { guardWasmKernels, noteWasmOutput, takeWasmFailures, WasmKernelFailure } from './wasm-node.js';
export { prepareWasmWinograd, winogradTransformThreads, type PrepareWinogradOptions } from './wasm-module.js';
export {
  clearWinogradCache,
  setWasmWinograd,
  setWasmWinogradTile,
  setWasmWinogradTraining,
  wasmWinogradEnabled,
  wasmWinogradTile,
  wasmWinogradTraining,
  winogradStats,
} from './winograd.js';
