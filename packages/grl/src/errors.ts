/**
 * Error thrown by @dfd/grl for invalid arguments or configuration. `code` is stable; the message
 * names the argument and says what to pass instead. (Kept local: @dfd/grl depends on tfjs only.)
 */
export class GrlError extends Error {
  /** Stable machine-readable code: `E_GRL_LAMBDA`, `E_GRL_DTYPE`, `E_GRL_SCHEDULE`, `E_GRL_PROGRESS`, `E_GRL_CONFIG`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'GrlError';
    this.code = code;
  }
}
