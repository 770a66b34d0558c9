import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GAMMA_SCHEDULE_PARAMS } from '@dfd/core';
import { PAPER_LOOP_DEFAULTS } from './compose.js';
import { PAPER_OPTIMIZER, eifeConfigSchema, mergeConfig, parseConfigText, resolveLearningRates, trainConfigSchema, validateConfig } from './config.js';
import { readConfigFile } from './config-file.js';

describe('train config', () => {
  it('fills the paper recipe as defaults', () => {
    const c = validateConfig(trainConfigSchema, { source: 'synthetic:studio', out: 'runs/x', targets: ['wild=synthetic:wild'] });
    expect(c.targets).toEqual([{ name: 'wild', spec: 'synthetic:wild' }]);
    expect(c.variant).toBe('att+eifp');
    expect(c.epochs).toBe(60);
    expect(c.data.batchSize).toBe(128);
    expect(c.data.microBatch).toBeUndefined();
    expect(c.optimizer).toEqual({ lr: { heads: 5e-4 }, weightDecay: 0.01, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
    expect(c.schedule).toEqual({ cosine: { tMax: 100, etaMin: 0 }, gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } });
    expect(resolveLearningRates(c.optimizer, false)).toEqual({ heads: 5e-4, backbone: 5e-4 });
    expect(resolveLearningRates(c.optimizer, true)).toEqual({ heads: 5e-4, backbone: 1e-6 });
  });

  it('names every bad field by its path', () => {
    const bad = { source: 'x', out: 'o', epochs: -1, data: { microBatch: 0 }, optimizer: { beta1: 2, lr: { heads: 'fast' } }, schedule: { gamma: { name: 'cubic' } }, targets: ['nospec'], colour: 1 };
    let message = '';
    try {
      validateConfig(trainConfigSchema, bad, 'run.yaml');
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code: string }).code).toBe('E_CONFIG');
    }
    expect(message).toMatch(/^invalid run\.yaml:/);
    expect(message).toMatch(/ {2}epochs: /);
    expect(message).toMatch(/ {2}data\.microBatch: /);
    expect(message).toMatch(/ {2}optimizer\.beta1: /);
    expect(message).toMatch(/ {2}optimizer\.lr\.heads: /);
    expect(message).toMatch(/ {2}schedule\.gamma\.name: /);
    expect(message).toMatch(/ {2}targets\.0: expected NAME=SPEC/);
    expect(message).toMatch(/colour/);
  });

  it("the schedule section follows @dfd/core's vocabulary tables: names, parameters, rules", () => {
    const schedule = (gamma: unknown, lambda?: unknown) => () => validateConfig(trainConfigSchema, { source: 'x', out: 'o', schedule: { gamma, ...(lambda ? { lambda } : {}) } });
    expect(validateConfig(trainConfigSchema, { source: 'x', out: 'o', schedule: { gamma: { name: 'linear', end: 0.5 }, lambda: { name: 'dann', alpha: 5 } } }).schedule).toEqual({
      cosine: { tMax: 100, etaMin: 0 },
      gamma: { name: 'linear', end: 0.5 },
      lambda: { name: 'dann', alpha: 5 },
    });
    expect(schedule({ name: 'constant' })).toThrow(/schedule\.gamma\.value: /);
    expect(schedule({ name: 'paper', alpha: 0 })).toThrow(/schedule\.gamma\.alpha: /);
    // The DANN slope is `alpha` everywhere (it was `gamma` in @dfd/grl's own schedule type).
    expect(schedule({ name: 'paper' }, { name: 'dann', gamma: 10 })).toThrow(/schedule\.lambda: .*gamma/);
    expect(Object.keys(GAMMA_SCHEDULE_PARAMS)).toEqual(['paper', 'constant', 'linear']);
  });

  it('PAPER_LOOP_DEFAULTS are the schema defaults of the optimizer section (one source)', () => {
    expect(PAPER_LOOP_DEFAULTS).toEqual({ lr: { heads: 5e-4, backbone: 1e-6 }, weightDecay: 0.01, beta1: 0.5, beta2: 0.999, eps: 1e-8 });
    expect(PAPER_OPTIMIZER).toEqual(validateConfig(trainConfigSchema, { source: 'x', out: 'o' }).optimizer);
  });

  it('reads YAML and JSON files and merges CLI overrides over them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-cfg-'));
    writeFileSync(join(dir, 'run.yaml'), 'source: synthetic:studio\nout: r\nepochs: 3\noptimizer:\n  lr:\n    heads: 0.001\ntargets:\n  wild: synthetic:wild\n');
    writeFileSync(join(dir, 'bad.json'), '{"source": ');
    const merged = mergeConfig(readConfigFile(join(dir, 'run.yaml')), { epochs: 5, optimizer: { weightDecay: 0 }, variant: undefined });
    const c = validateConfig(trainConfigSchema, merged);
    expect(c.epochs).toBe(5);
    expect(c.optimizer.lr.heads).toBe(0.001);
    expect(c.optimizer.weightDecay).toBe(0);
    expect(c.targets).toEqual([{ name: 'wild', spec: 'synthetic:wild' }]);
    expect(() => readConfigFile(join(dir, 'bad.json'))).toThrow(/bad\.json is not valid JSON/);
    expect(() => readConfigFile(join(dir, 'missing.yaml'))).toThrow(/cannot read/);
  });

  it('parseConfigText (no file system) picks JSON by the name, YAML otherwise, and wants a mapping', () => {
    expect(parseConfigText('epochs: 3\nschedule:\n  gamma: { name: paper }\n', 'pasted')).toEqual({ epochs: 3, schedule: { gamma: { name: 'paper' } } });
    expect(parseConfigText('{"epochs": 3}', 'RUN.JSON')).toEqual({ epochs: 3 });
    expect(() => parseConfigText('epochs: 3', 'run.json')).toThrow(/run\.json is not valid JSON/);
    expect(() => parseConfigText('- a\n- b\n', 'list.yaml')).toThrow(/list\.yaml is not valid YAML: the top level must be a mapping/);
    expect(() => parseConfigText('a: [1,', 'broken.yml')).toThrow(/broken\.yml is not valid YAML/);
  });

  it('stage-1 config requires factors', () => {
    expect(() => validateConfig(eifeConfigSchema, { dataset: 'synthetic:studio', out: 'e', factors: [] })).toThrow(/factors: /);
  });
});
