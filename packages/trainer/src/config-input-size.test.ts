import { ConfigError } from '@dfd/core';
import { describe, expect, it } from 'vitest';
import { eifeConfigSchema, trainConfigSchema, validateConfig } from './config.js';

// Issue 24, case 13: `--input-size 100000` was a RangeError (typed array length) after the run
// folder existed; now the config is refused up front, naming the flag.
describe('--input-size is range-checked in the config', () => {
  it('refuses 100000, 8 and 90.5 with a message naming --input-size; accepts 16..1024', () => {
    const base = { source: 'synthetic:studio', out: '/tmp/never-created' };
    for (const [size, msg] of [[100000, /--input-size must be at most 1024 pixels/], [8, /--input-size must be at least 16 pixels/], [90.5, /--input-size must be a whole number/]] as const) {
      for (const schema of [trainConfigSchema, eifeConfigSchema]) {
        const err = (() => {
          try {
            validateConfig(schema, { ...base, ...(schema === eifeConfigSchema ? { factors: [{ name: 'age', classes: 5 }] } : {}), model: { inputSize: size } });
          } catch (e) {
            return e;
          }
        })();
        expect(err, String(size)).toBeInstanceOf(ConfigError);
        expect((err as Error).message, String(size)).toMatch(msg);
        expect((err as Error).message).toContain('model.inputSize');
      }
    }
    expect(validateConfig(trainConfigSchema, { ...base, model: { inputSize: 1024 } }).model.inputSize).toBe(1024);
    expect(validateConfig(trainConfigSchema, { ...base, model: { inputSize: 16 } }).model.inputSize).toBe(16);
  });
});
