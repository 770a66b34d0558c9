import { describe, expect, it } from 'vitest';
import { DfdError } from '@dfd/core';
import { parseThreads } from './train.js';

// Issue 24 (poor message): `--threads 1000` was taken silently (64 workers on 2 cores).
describe('--threads', () => {
  it('is refused above the CPUs of the machine, saying how many there are', () => {
    expect(parseThreads('2', 2)).toBe(2);
    expect(() => parseThreads('1000', 2)).toThrow(DfdError);
    expect(() => parseThreads('1000', 2)).toThrow('--threads 1000 is more than the 2 CPU(s) of this machine; use at most --threads 2');
    expect(() => parseThreads('0', 2)).toThrow(/--threads must be a whole number >= 1/);
  });
});
