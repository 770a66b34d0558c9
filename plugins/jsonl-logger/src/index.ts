export { JsonlLoggerPlugin, registerJsonlLogger, type JsonlLoggerOptions } from './jsonl-logger.js';
