import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Checks what examples/programmatic.mjs printed (its last line, JSON) and wrote under `out`; returns the summary. */
export function checkExampleOutput(stdout: string, out: string) {
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    status: string;
    losses: number[];
    history: number[];
    report: { results: Array<{ target: string; count: number; accuracy: number; confusion: number[][] }>; mean: number };
    targetEvents: unknown[];
    again: Array<{ target: string; count: number; accuracy: number; confusion: number[][] }>;
  };
  expect(summary.status).toBe('completed');
  // The callback saw every epoch, with the trainer's own epoch losses, and the target evaluation.
  expect(summary.losses).toHaveLength(2);
  expect(summary.losses).toEqual(summary.history);
  summary.losses.forEach((l) => expect(Number.isFinite(l) && l > 0).toBe(true));
  expect(summary.report.results.map((r) => [r.target, r.count])).toEqual([['stripes-b', 7]]); // every third of 21 files
  expect(summary.report.results[0]!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(7);
  expect(summary.targetEvents).toEqual(summary.report.results);
  // The saved model evaluates the same again.
  expect(summary.again).toEqual(summary.report.results);
  for (const f of ['report.json', 'report.md', 'curves-loss.png', 'confusion-stripes-b.png', 'metrics.jsonl', 'model/model.json', 'config.json']) expect(existsSync(join(out, 'run', f)), f).toBe(true);
  const events = readFileSync(join(out, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; split?: string; epoch?: number });
  expect(events[0]!.type).toBe('runStart');
  expect(events.filter((e) => e.type === 'epochEnd').map((e) => e.epoch)).toEqual([1, 2]);
  expect(events.slice(-3).map((e) => e.split ?? e.type)).toEqual(['target', 'source-test', 'runEnd']);
  return summary;
}

export const EXAMPLE_ARGS = ['--samples', '21', '--epochs', '2', '--width', '0.0625', '--input-size', '16'];
