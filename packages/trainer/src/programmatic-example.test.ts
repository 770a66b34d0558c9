import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../examples/programmatic.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('examples/programmatic.ts', () => {
  it('trains with a custom dataset plugin and a custom callback plugin, and writes the reports', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-example-'));
    const { report, result, losses, targetEvents, again } = await main({ out, samples: 16, epochs: 2, width: 0.0625, inputSize: 16 });
    expect(result.status).toBe('completed');
    // The callback saw both epochs, with the trainer's own epoch losses.
    expect(losses).toHaveLength(2);
    expect(losses).toEqual(result.history.map((h) => h.loss));
    expect(report.source).toBe('stripes:16');
    expect(report.results.map((r) => r.target)).toEqual(['stripes-b']);
    expect(report.results[0]!.count).toBe(4); // test split of stripes:8 = ceil(8/2)
    const confusionTotal = report.results[0]!.confusion.flat().reduce((a, b) => a + b, 0);
    expect(confusionTotal).toBe(4);
    expect(report.mean).toBeCloseTo(report.results[0]!.accuracy, 12);
    // The callback saw the target evaluation as an event; the saved model evaluates the same again.
    expect(targetEvents).toEqual(report.results);
    expect(again.results[0]).toMatchObject({ target: 'stripes-c', count: 4, accuracy: report.results[0]!.accuracy });
    expect(again.results[0]!.confusion).toEqual(report.results[0]!.confusion);
    for (const f of ['report.json', 'report.md', 'curves-loss.svg', 'curves-loss.png', 'confusion-stripes-b.png', 'metrics.jsonl', 'model/model.json', 'config.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const png = readFileSync(join(out, 'curves-loss.png'));
    expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/\| source \| stripes-b \| mean \|/);
    const events = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(events[0]).toBe('runStart');
    expect(events.at(-1)).toBe('runEnd');
  });
});
