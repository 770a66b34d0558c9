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
