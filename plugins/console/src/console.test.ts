import { describe, expect, it } from 'vitest';
import { TOKENS, createContainer, type DfdEvent } from '@dfd/core';
import { ConsolePlugin, formatDuration } from './console.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, isTTY, write: (t: string) => void chunks.push(t) };
}

async function drive(plugin: ConsolePlugin, clock: { t: number }) {
  const container = createContainer();
  const host = container.resolve(TOKENS.PluginHost);
  const bus = container.resolve(TOKENS.Bus);
  host.use(plugin);
  await host.setupAll();
  const emit = async (e: DfdEvent) => {
    bus.emit(e);
    await bus.drain();
  };
  await emit({ type: 'runStart', runId: 'r1', stage: 'dfd', epochs: 2, stepsPerEpoch: 2, startEpoch: 0, config: {} });
  for (let epoch = 0; epoch < 2; epoch++) {
    await emit({ type: 'epochStart', epoch, totalEpochs: 2 });
    for (let step = 0; step < 2; step++) {
      clock.t += 1000;
      const globalStep = epoch * 2 + step + 1;
      await emit({ type: 'batchEnd', epoch, step, stepsPerEpoch: 2, globalStep, totalSteps: 4, p: (globalStep - 1) / 4, loss: { total: 2 - globalStep * 0.25 }, accuracy: 0.25 * step, learningRates: {} });
    }
    await emit({ type: 'epochEnd', epoch: epoch + 1, totalEpochs: 2, metrics: { loss: 1.5, accuracy: 0.125 } }); // epochs done (1-based)
  }
  await emit({ type: 'runEnd', runId: 'r1', status: 'completed', epochsDone: 2 });
  await host.teardownAll();
}

describe('ConsolePlugin', () => {
  it('plain stream: one line per epoch, no carriage returns', async () => {
    const s = sink(false);
    const clock = { t: 0 };
    await drive(new ConsolePlugin({ stream: s, now: () => clock.t }), clock);
    const text = s.chunks.join('');
    expect(text).not.toContain('\r');
    expect(text.trimEnd().split('\n')).toEqual([
      '[dfd] r1: 2 epoch(s) x 2 step(s)',
      'epoch 1/2  loss 1.5000  accuracy 0.1250',
      'epoch 2/2  loss 1.5000  accuracy 0.1250',
      '[dfd] completed after 2 epoch(s) (0:04)',
    ]);
  });

  it('epoch lines do not repeat the epoch (metrics.epoch) and give seconds as a duration', async () => {
    const s = sink(false);
    const container = createContainer();
    const host = container.resolve(TOKENS.PluginHost);
    const bus = container.resolve(TOKENS.Bus);
    host.use(new ConsolePlugin({ stream: s }));
    await host.setupAll();
    bus.emit({ type: 'epochEnd', epoch: 3, totalEpochs: 5, metrics: { epoch: 3, seconds: 1.885, loss: 2 } });
    await bus.drain();
    await host.teardownAll();
    expect(s.chunks.join('')).toBe('epoch 3/5  1.9 s  loss 2.0000\n');
  });

  it('TTY: redraws a progress line with running loss, accuracy and ETA', async () => {
    const s = sink(true);
    const clock = { t: 0 };
    const plugin = new ConsolePlugin({ stream: s, now: () => clock.t, redrawMs: 0, barWidth: 4 });
    await drive(plugin, clock);
    const redraws = s.chunks.filter((c) => c.startsWith('\r\x1b[2Kepoch'));
    expect(redraws).toHaveLength(4);
    // step 1 of epoch 1: 1 s per step so far, 3 steps left -> ETA 0:03; mean loss 1.75; acc 0%.
    expect(redraws[0]).toBe('\r\x1b[2Kepoch 1 [##..] 1/2 loss 1.7500 acc 0.0% ETA 0:03');
    // second step: running mean of 1.75 and 1.5, mean accuracy of 0 and 25%.
    expect(redraws[1]).toBe('\r\x1b[2Kepoch 1 [####] 2/2 loss 1.6250 acc 12.5% ETA 0:02');
  });

  it('formats durations', () => {
    expect(formatDuration(65_000)).toBe('1:05');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
    expect(formatDuration(Number.NaN)).toBe('--:--');
  });
});
