import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DfdEvent, DfdPlugin } from '@dfd/core';
import { describe, expect, it } from 'vitest';
import { JsonlLoggerPlugin } from '@dfd/plugin-jsonl-logger';
import { schedulerPlugins } from '@dfd/plugin-schedulers';
import { createTrainer, evaluateModelDir } from './node.js';

// What a user who never calls useBackend gets. Runs in its own worker: no backend is active yet.
describe('createTrainer / evaluateModelDir as entry points', () => {
  const out = mkdtempSync(join(tmpdir(), 'dfd-entry-'));
  const wild = 'synthetic:wild?train=0&test=5&size=16';

  it('select config.backend themselves; epochEnd counts epochs like metrics.epoch; target evaluation is emitted before runEnd', async () => {
    expect(tf.engine().backendName ?? null).toBeNull();
    const events: DfdEvent[] = [];
    const spy: DfdPlugin = { name: 'spy', setup: (ctx) => ['epochEnd', 'evaluation', 'runEnd'].forEach((t) => ctx.on(t as 'runEnd', (e) => void events.push(e))) };
    const run = await createTrainer(
      {
        source: 'synthetic:studio?train=8&test=3&size=16',
        targets: [`wild=${wild}`],
        variant: 'base',
        out,
        epochs: 2,
        backend: 'cpu',
        model: { width: 0.0625, inputSize: 16 },
        data: { batchSize: 4, evalBatchSize: 8, augment: false },
        console: false,
      },
      // What createDefaultPlugins (@dfd/cli/plugins) gives with console: false, and the spy.
      { plugins: (c) => [...schedulerPlugins(c.schedule), new JsonlLoggerPlugin({ path: join(c.out, 'metrics.jsonl') }), spy] },
    );
    expect(tf.getBackend()).toBe('cpu');
    const { report } = await run.run();
    const ends = events.filter((e) => e.type === 'epochEnd');
    expect(ends.map((e) => [e.epoch, e.metrics.epoch])).toEqual([[1, 1], [2, 2]]);
    expect(events.map((e) => (e.type === 'evaluation' ? `evaluation:${e.split}` : e.type))).toEqual(['epochEnd', 'epochEnd', 'evaluation:target', 'evaluation:source-test', 'runEnd']);
    const target = events.find((e) => e.type === 'evaluation' && e.split === 'target') as Extract<DfdEvent, { type: 'evaluation' }>;
    expect(target.epoch).toBe(2);
    expect(target.results).toEqual(report.results);
    expect(target.mean).toBe(report.mean);
    expect(report.results[0]).toMatchObject({ target: 'wild', count: 5 });
    // metrics.jsonl (the jsonl plugin, torn down at runEnd) has them too, in the same order.
    const logged = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DfdEvent);
    expect(logged.filter((e) => e.type === 'evaluation').map((e) => (e as { split: string }).split)).toEqual(['target', 'source-test']);
    expect(logged.at(-1)!.type).toBe('runEnd');
  });

  it("evaluateModelDir takes the documented 'name=spec' strings, objects or a map, and names a bad one", async () => {
    const fromString = await evaluateModelDir(out, [`wild=${wild}`]);
    const fromObject = await evaluateModelDir(join(out, 'model'), [{ name: 'wild', spec: wild }], { backend: 'auto' });
    const fromMap = await evaluateModelDir(out, { wild });
    expect(fromString.results[0]).toMatchObject({ target: 'wild', count: 5 });
    expect(fromObject.results).toEqual(fromString.results);
    expect(fromMap.results).toEqual(fromString.results);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { results: unknown[] };
    expect(JSON.parse(JSON.stringify(fromString.results))).toEqual(report.results); // JSON writes NaN (classes without samples) as null
    await expect(evaluateModelDir(out, ['wild'])).rejects.toThrow(/targets[\s\S]*expected NAME=SPEC \(e\.g\. wild=synthetic:wild\), got 'wild'/);
    await expect(evaluateModelDir(out, [])).rejects.toThrow(/at least one target/);
    await expect(evaluateModelDir(out, [`wild=${wild}`], { backend: 'tpu' })).rejects.toThrow(/unknown backend 'tpu'/);
  });
});
