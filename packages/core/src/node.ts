// Node-only helpers of @dfd/core (file system); the main entry stays browser-safe.
export { DEFAULT_MAX_INPUT_BYTES, InputFileError, openRegularFile, readRegularFile, readRegularFileSync, type InputFileOptions } from './input-file.js';
