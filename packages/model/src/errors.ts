import { DfdError } from '@dfd/core';

/** A saved model (model.json + weights) is malformed or does not match the architecture it names. */
export class ModelFormatError extends DfdError {
  /** Where the model came from (file, URL or 'artifacts'). */
  readonly source: string;

  constructor(source: string, message: string) {
    super('E_MODEL_FORMAT', `${source}: ${message}`);
    this.source = source;
  }
}

/** A model holds NaN or infinite weights: it is never written, and loading one fails. */
export class NonFiniteWeightsError extends ModelFormatError {
  /** Names of the weights holding non-finite values. */
  readonly weights: string[];
  /** Number of non-finite values in all of them. */
  readonly count: number;

  constructor(source: string, weights: string[], count: number, action: string) {
    super(source, `${count} non-finite weight value(s) (NaN or infinite) in ${weights.slice(0, 5).join(', ')}${weights.length > 5 ? ` (+${weights.length - 5} more)` : ''}; ${action}`);
    this.weights = weights;
    this.count = count;
  }
}

/**
 * A model-folder write was refused because the path holds something dfd did not write there (a
 * user's files, a regular file): nothing was changed.
 */
export class ModelDirRefusedError extends DfdError {
  /** The folder (or file) that would have been replaced. */
  readonly path: string;
  /** What is there that dfd did not write (entry names), empty for a regular file. */
  readonly foreign: string[];

  constructor(path: string, message: string, foreign: string[] = []) {
    super('E_MODEL_OUT', `${path}: ${message}`);
    this.path = path;
    this.foreign = foreign;
  }
}

/**
 * Writing a model folder failed at the file system (no space left, quota, I/O error): names the
 * folder, the file being written and the system's code. Nothing was replaced, and the temporary
 * folder was removed.
 */
export class ModelWriteError extends DfdError {
  /** The model folder that was being written. */
  readonly path: string;
  /** The system error code (ENOSPC, EDQUOT, EIO...), when there was one. */
  readonly errno: string | undefined;

  constructor(path: string, file: string, cause: NodeJS.ErrnoException) {
    const why = cause.code === 'ENOSPC' ? 'no space left on the device' : cause.code === 'EDQUOT' ? 'disk quota exceeded' : cause.message;
    super('E_MODEL_WRITE', `cannot write the model folder ${path} (${file}): ${why}${cause.code ? ` (${cause.code})` : ''}; nothing was replaced and no temporary files were left. Free space or write elsewhere, then run again.`);
    this.path = path;
    this.errno = cause.code;
  }
}
