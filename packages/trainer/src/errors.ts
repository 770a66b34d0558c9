import { DfdError } from '@dfd/core';

/** A checkpoint folder is missing, incomplete or from another run/format. */
export class CheckpointError extends DfdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CHECKPOINT', message, options);
  }
}

/** The loss became NaN or infinite; the last good checkpoint is kept. */
export class NonFiniteLossError extends DfdError {
  constructor(message: string) {
    super('E_NON_FINITE_LOSS', message);
  }
}

/** Something the trainer needs from the data or the model is missing or inconsistent. */
export class TrainingSetupError extends DfdError {
  constructor(message: string) {
    super('E_TRAINING_SETUP', message);
  }
}
