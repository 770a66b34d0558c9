/** Base class of every error dfd throws on purpose: `code` is stable, `message` says what to do. */
export class DfdError extends Error {
  /** Stable machine-readable code, e.g. `E_PLUGIN_UNKNOWN`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value is missing or invalid; `field` names it (dotted path). */
export class ConfigError extends DfdError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('E_CONFIG', `${field}: ${message}`);
    this.field = field;
  }
}
