import { DfdError } from '@dfd/core';

/** Where in a dataset a problem sits and what was expected there. */
export interface FormatErrorLocation {
  /** File (or folder) that is wrong. */
  file: string;
  /** 1-based line number in a text file. */
  line?: number;
  /** Column / field name. */
  field?: string;
  /** What a valid value looks like. */
  expected?: string;
}

/** Malformed dataset input: names the file, line, field and what is expected there. */
export class DatasetFormatError extends DfdError {
  readonly file: string;
  readonly line?: number;
  readonly field?: string;
  readonly expected?: string;

  constructor(location: FormatErrorLocation, problem: string, options?: { cause?: unknown }) {
    const where = [location.file, location.line !== undefined ? `line ${location.line}` : undefined, location.field ? `field '${location.field}'` : undefined]
      .filter(Boolean)
      .join(', ');
    const expected = location.expected ? `; expected ${location.expected}` : '';
    super('E_DATASET_FORMAT', `${where}: ${problem}${expected}`, options);
    this.file = location.file;
    this.line = location.line;
    this.field = location.field;
    this.expected = location.expected;
  }
}

/** A dataset spec is malformed or names no registered plugin. */
export class DatasetSpecError extends DfdError {
  constructor(message: string) {
    super('E_DATASET_SPEC', message);
  }
}

/** An image cannot be decoded (unreadable, truncated, unsupported). */
export class ImageDecodeError extends DfdError {
  readonly file: string;

  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    // A missing file is a wrong path (dfd predict, a list file), not a bad image.
    const advice = reason.startsWith('file not found') ? 'check the path' : 're-export it as JPEG/PNG or remove it from the dataset';
    super('E_IMAGE_DECODE', `${file}: cannot decode image (${reason}); ${advice}`, options);
    this.file = file;
  }
}
