import type { TensorInfo } from '@tensorflow/tfjs-core';
import { WasmVersionError } from './errors.js';

/*
 * @dfd/backends works inside tfjs-backend-wasm: its kernels call BackendWasm's makeOutput,
 * typedArrayFromHeap and dataIdMap, its module reads the Emscripten memory, and in Node it loads
 * `wasm-out/*` builds itself. None of that is public API, so packages/backends/package.json pins
 * `@tensorflow/tfjs-backend-wasm` (and tfjs-core, tfjs-backend-cpu) to one exact version, and
 * registration checks that the module which is loaded is that version.
 */

/** The `@tensorflow/tfjs-backend-wasm` version @dfd/backends is pinned to (packages/backends/package.json). */
export const TFJS_WASM_VERSION = '4.22.0';

/**
 * Everything dfd uses of a tfjs-backend-wasm {@link TFJS_WASM_VERSION} `BackendWasm` instance
 * beyond tfjs-core's KernelBackend API (the kernels in src/kernels/, dfd's module in
 * src/wasm-module.ts, the Winograd cache in src/winograd.ts). Check these when moving the pin.
 */
export type BackendWasmInternals = {
  /** The Emscripten module; its memory is where tensors live (the name moved between Emscripten versions). */
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; wasmExports?: { memory?: WebAssembly.Memory } };
  /** Tensor records by dataId, with their byte offset in that memory. */
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined; has(dataId: object): boolean };
  disposeData(dataId: object): boolean;
  /** Allocates an output tensor in wasm memory. */
  makeOutput(shape: number[], dtype: string): TensorInfo;
  /** A view of a tensor's bytes in wasm memory (detached when a non-shared memory grows). */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: object): void;
};

/** What registration needs of the loaded `@tensorflow/tfjs-backend-wasm` module (its exports). */
export interface TfjsWasmModule {
  /** The package version (tfjs-backend-wasm exports it as `version_wasm`). */
  version_wasm: string;
  /** Its backend class; when given, the active wasm backend must be one of its instances. */
  BackendWasm?: abstract new (...args: never[]) => unknown;
}

let noted: TfjsWasmModule | undefined;

const INSTALL = `npm install @tensorflow/tfjs-backend-wasm@${TFJS_WASM_VERSION} @tensorflow/tfjs-core@${TFJS_WASM_VERSION}`;

/**
 * Checks that `module` (the loaded `@tensorflow/tfjs-backend-wasm`) is version
 * {@link TFJS_WASM_VERSION} and remembers it for {@link checkTfjsWasm}. `useBackend('wasm')` does
 * this with the module it imports; an application that imports and registers the wasm backend
 * itself calls `noteTfjsWasm(await import('@tensorflow/tfjs-backend-wasm'))` before
 * `registerWasmTrainingKernels()`. Throws {@link WasmVersionError} for another version.
 */
export function noteTfjsWasm(module: TfjsWasmModule): void {
  noted = module;
  checkTfjsWasm();
}

/**
 * Throws {@link WasmVersionError} unless the noted tfjs-backend-wasm ({@link noteTfjsWasm}) is
 * version {@link TFJS_WASM_VERSION} and, when `backend` (the active wasm backend instance) is
 * given, that backend is an instance of the noted module's BackendWasm (not of another copy).
 * registerWasmTrainingKernels() and useBackend('wasm') call it.
 */
export function checkTfjsWasm(backend?: object): void {
  if (noted == null) {
    throw new WasmVersionError(
      TFJS_WASM_VERSION,
      'unknown',
      `@dfd/backends: cannot tell which @tensorflow/tfjs-backend-wasm is loaded (its kernels need exactly ${TFJS_WASM_VERSION}); ` +
        "select the backend with useBackend('wasm'), or call noteTfjsWasm(await import('@tensorflow/tfjs-backend-wasm')) before registerWasmTrainingKernels()",
    );
  }
  const loaded = String(noted.version_wasm);
  if (loaded !== TFJS_WASM_VERSION) {
    throw new WasmVersionError(
      TFJS_WASM_VERSION,
      loaded,
      `@dfd/backends needs @tensorflow/tfjs-backend-wasm ${TFJS_WASM_VERSION} exactly (its wasm kernels use that version's internals), ` +
        `but ${loaded} is loaded; run \`${INSTALL}\` (npm ls @tensorflow/tfjs-backend-wasm lists the copies)`,
    );
  }
  if (backend != null && noted.BackendWasm != null && !(backend instanceof noted.BackendWasm)) {
    throw new WasmVersionError(
      TFJS_WASM_VERSION,
      'another copy',
      `@dfd/backends: the active 'wasm' backend was registered by another copy of @tensorflow/tfjs-backend-wasm, not the ${TFJS_WASM_VERSION} ` +
        `that @dfd/backends loaded (its kernels need exactly that one); make the application use one copy: \`${INSTALL}\` ` +
        '(npm ls @tensorflow/tfjs-backend-wasm lists the copies)',
    );
  }
}
