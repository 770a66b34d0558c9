import { DfdError } from '@dfd/core';

/** A tfjs backend cannot be used here; `backend` names it and the message says what to install. */
export class BackendUnavailableError extends DfdError {
  /** The backend that was asked for, e.g. `tensorflow-gpu`. */
  readonly backend: string;

  constructor(backend: string, message: string, options?: { cause?: unknown }) {
    super('E_BACKEND_UNAVAILABLE', message, options);
    this.backend = backend;
  }
}

/**
 * The loaded `@tensorflow/tfjs-backend-wasm` is not the version @dfd/backends is pinned to (its
 * wasm kernels use that version's internals); `expected` and `loaded` name both, and the message
 * says what to install.
 */
export class WasmVersionError extends DfdError {
  /** The version @dfd/backends is pinned to, e.g. `4.22.0`. */
  readonly expected: string;
  /** The version that is loaded (or a description of the copy, when its version is unknown). */
  readonly loaded: string;

  constructor(expected: string, loaded: string, message: string) {
    super('E_WASM_VERSION', message);
    this.expected = expected;
    this.loaded = loaded;
  }
}
