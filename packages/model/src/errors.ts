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
