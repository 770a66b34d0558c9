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

/** The run folder cannot be used: locked by another run, holding a finished run, or not writable. */
export class RunFolderError extends DfdError {
  /** The folder (or file) concerned. */
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('E_RUN_FOLDER', message, options);
    this.path = path;
  }
}

/** `run()` of a composed run ended with status `failed`: nothing in model/ or the report was replaced. */
export class TrainingFailedError extends DfdError {
  constructor(
    message: string,
    /** The trainer's result (status 'failed', reason, epochs and steps done, last checkpoint). */
    readonly result: { status: 'failed'; reason?: string; epochsDone: number; globalStep: number; checkpoint?: string },
  ) {
    super('E_TRAINING_FAILED', message);
  }
}

/** Training ended and the model was saved, but evaluating it failed: `--resume` re-runs the evaluation without training again. */
export class EvaluationFailedError extends DfdError {
  constructor(
    message: string,
    /** The model folder that was written. */
    readonly modelDir: string,
    options?: { cause?: unknown },
  ) {
    super('E_EVALUATION_FAILED', message, options);
  }
}
