import { DfdError } from '@dfd/core';

/** A checkpoint asks for a Python global outside the allow-list; nothing was executed. */
export class UnsafePickleError extends DfdError {
  /** The refused global as `module.name`, e.g. `os.system`. */
  readonly global: string;

  constructor(file: string, global: string) {
    super(
      'E_UNSAFE_PICKLE',
      `checkpoint '${file}' references global '${global}', which is not allowed: only tensor storages and plain containers are accepted ` +
        `(re-save it in PyTorch as a plain state_dict: torch.save(model.state_dict(), path), or as .safetensors)`,
    );
    this.global = global;
  }
}

/** A checkpoint file is truncated, corrupt or in a layout the importer does not read. */
export class CheckpointFormatError extends DfdError {
  /** The file (or name given by the caller) that failed to parse. */
  readonly file: string;

  constructor(file: string, message: string) {
    super('E_CHECKPOINT_FORMAT', `checkpoint '${file}': ${message}`);
    this.file = file;
  }
}

/** One key whose shape in the checkpoint differs from the model's (PyTorch order both). */
export interface ShapeMismatch {
  key: string;
  expected: number[];
  got: number[];
}

/** The checkpoint's keys or shapes do not match the model; lists every offending key by name. */
export class CheckpointMismatchError extends DfdError {
  readonly missing: string[];
  readonly unexpected: string[];
  readonly mismatched: ShapeMismatch[];

  constructor(what: string, missing: string[], unexpected: string[], mismatched: ShapeMismatch[]) {
    const parts: string[] = [];
    const list = (keys: string[]): string => {
      const shown = keys.slice(0, 40).join(', ');
      return keys.length > 40 ? `${shown}, ... (${keys.length - 40} more)` : shown;
    };
    if (mismatched.length > 0) {
      const shown = mismatched
        .slice(0, 40)
        .map((m) => `${m.key} (expected [${m.expected.join(', ')}], got [${m.got.join(', ')}])`)
        .join(', ');
      parts.push(`${mismatched.length} with the wrong shape (PyTorch order): ${shown}${mismatched.length > 40 ? ', ...' : ''}`);
    }
    if (missing.length > 0) parts.push(`${missing.length} missing from the checkpoint: ${list(missing)}`);
    if (unexpected.length > 0) parts.push(`${unexpected.length} unexpected (not in the model): ${list(unexpected)}`);
    super(
      'E_CHECKPOINT_MISMATCH',
      `${what} does not match the model: ${parts.join('; ')}. ` +
        `Check the model options (variant, width, layout), map renamed keys with a prefix map (e.g. backbone.=efe.), ` +
        `or load only the backbone`,
    );
    this.missing = missing;
    this.unexpected = unexpected;
    this.mismatched = mismatched;
  }
}
