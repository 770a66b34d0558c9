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
