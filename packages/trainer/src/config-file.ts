import { readFileSync } from 'node:fs';
import { ConfigError } from '@dfd/core';
import { parseConfigText } from './config.js';

/** Read a JSON (`.json`) or YAML config file into a plain object; errors name the file. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${path}: ${(err as Error).message}`);
  }
  return parseConfigText(text, path);
}
