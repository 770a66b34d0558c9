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

/** What a file-system error code means, in words. */
const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, not a file',
  EEXIST: 'it already exists',
  ENOENT: 'no such file or folder',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/**
 * One line for a Node file-system error, `cannot <syscall> <path>: <cause in words> (<CODE>)`
 * (no stack trace); null when `err` is not one (no `E...` code).
 */
export function describeFsError(err: unknown, fallbackPath?: string): string | null {
  const e = err as { code?: unknown; path?: string; syscall?: string; message?: string } | null;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string' || !/^E[A-Z]+$/.test(e.code)) return null;
  const path = e.path ?? fallbackPath;
  const verb = e.syscall ? `cannot ${e.syscall}` : 'file-system error';
  return `${verb}${path ? ` ${path}` : ''}: ${CAUSES[e.code] ?? e.message ?? e.code} (${e.code})`;
}
