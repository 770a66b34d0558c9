import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PluginRegistry, TOKENS, createContainer } from '@dfd/core';
import { JsonlLoggerPlugin, registerJsonlLogger } from './jsonl-logger.js';

describe('JsonlLoggerPlugin', () => {
  it('appends one JSON object per event, keeps earlier lines, and writes NaN visibly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-jsonl-'));
    const path = join(dir, 'sub', 'metrics.jsonl');
    const container = createContainer();
    const host = container.resolve(TOKENS.PluginHost);
    const bus = container.resolve(TOKENS.Bus);
    host.use(registerJsonlLogger(new PluginRegistry()).create('jsonl-logger', { path }));
    await host.setupAll();
    bus.emit({ type: 'epochStart', epoch: 0, totalEpochs: 2 });
    bus.emit({ type: 'batchEnd', epoch: 0, step: 0, stepsPerEpoch: 1, globalStep: 1, totalSteps: 2, p: 0, loss: { total: Number.NaN, cls: 1.5 }, learningRates: { heads: 5e-4 } });
    bus.emit({ type: 'epochEnd', epoch: 0, totalEpochs: 2, metrics: { loss: 1.25 } });
    await host.teardownAll();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(['epochStart', 'batchEnd', 'epochEnd']);
    expect(lines[1].loss).toEqual({ total: 'NaN', cls: 1.5 });
    expect(lines[2].metrics.loss).toBe(1.25);
    expect(typeof lines[0].time).toBe('string');

    // A second run appends.
    const c2 = createContainer();
    const h2 = c2.resolve(TOKENS.PluginHost);
    h2.use(new JsonlLoggerPlugin({ path, events: ['runEnd'] }));
    await h2.setupAll();
    c2.resolve(TOKENS.Bus).emit({ type: 'epochStart', epoch: 1, totalEpochs: 2 });
    c2.resolve(TOKENS.Bus).emit({ type: 'runEnd', runId: 'r', status: 'completed', epochsDone: 2 });
    await h2.teardownAll();
    const all = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(all.map((l) => l.type)).toEqual(['epochStart', 'batchEnd', 'epochEnd', 'runEnd']);
  });
});
