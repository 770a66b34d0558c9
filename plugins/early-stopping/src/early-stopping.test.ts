import { describe, expect, it } from 'vitest';
import { PluginRegistry, createContainer, TOKENS } from '@dfd/core';
import { EarlyStoppingPlugin, registerEarlyStopping } from './early-stopping.js';

function recorder() {
  const reasons: string[] = [];
  return { reasons, requestStop: (r: string) => void reasons.push(r) };
}

describe('EarlyStoppingPlugin', () => {
  it('min mode: stops after `patience` epochs without an improvement larger than minDelta', () => {
    const es = new EarlyStoppingPlugin({ monitor: 'loss', patience: 2, minDelta: 0.01 });
    const ctx = recorder();
    expect(es.mode).toBe('min');
    expect(es.observe(0, 1.0, ctx)).toBe(false);
    expect(es.observe(1, 0.8, ctx)).toBe(false); // improved
    expect(es.observe(2, 0.795, ctx)).toBe(false); // within minDelta: wait 1
    expect(es.getState()).toEqual({ best: 0.8, wait: 1, stoppedEpoch: null });
    expect(es.observe(3, 0.9, ctx)).toBe(false); // wait 2
    expect(es.observe(4, 0.85, ctx)).toBe(true); // wait 3 > patience 2
    expect(ctx.reasons[0]).toMatch(/loss did not improve by 0.01 for 3 epoch\(s\) \(best 0.8, last 0.85\)/);
    expect(es.getState().stoppedEpoch).toBe(4);
  });

  it('auto mode picks max for accuracy, and a baseline must be beaten', () => {
    const es = new EarlyStoppingPlugin({ monitor: 'val_accuracy', baseline: 0.5, patience: 1 });
    const ctx = recorder();
    expect(es.mode).toBe('max');
    expect(es.observe(0, 0.4, ctx)).toBe(false);
    expect(es.observe(1, 0.45, ctx)).toBe(true);
    expect(ctx.reasons[0]).toMatch(/baseline 0.5/);
  });

  it('stops at once on a non-finite value, and state round-trips', () => {
    const es = new EarlyStoppingPlugin({ patience: 10 });
    const ctx = recorder();
    es.observe(0, 2, ctx);
    expect(es.observe(1, Number.NaN, ctx)).toBe(true);
    expect(ctx.reasons[0]).toMatch(/loss is NaN at epoch 1/);
    const other = new EarlyStoppingPlugin({ patience: 10 });
    other.setState(es.getState());
    expect(other.getState()).toEqual({ best: 2, wait: 0, stoppedEpoch: 1 });
  });

  it('asks the host to stop through the bus (epochEnd, also for a non-finite monitored value)', async () => {
    const container = createContainer();
    const host = container.resolve(TOKENS.PluginHost);
    const bus = container.resolve(TOKENS.Bus);
    const es = registerEarlyStopping(new PluginRegistry()).create('early-stopping', { patience: 0 });
    host.use(es);
    await host.setupAll();
    bus.emit({ type: 'epochEnd', epoch: 0, totalEpochs: 5, metrics: { loss: 1 } });
    bus.emit({ type: 'epochEnd', epoch: 1, totalEpochs: 5, metrics: { loss: 1.5 } });
    await bus.drain();
    expect(host.stopRequested).toEqual({ by: 'early-stopping', reason: expect.stringMatching(/did not improve/) });

    const c2 = createContainer();
    const host2 = c2.resolve(TOKENS.PluginHost);
    host2.use(new EarlyStoppingPlugin());
    await host2.setupAll();
    // A loss part a task reports outside its total can be NaN while training goes on; its epoch mean is then NaN.
    const bus2 = c2.resolve(TOKENS.Bus);
    bus2.emit({ type: 'epochEnd', epoch: 1, totalEpochs: 5, metrics: { loss: 0.5, aux: 0.2 } });
    await bus2.drain();
    expect(host2.stopRequested).toBeUndefined();
    const es2 = new EarlyStoppingPlugin({ monitor: 'aux' }, 'es-aux');
    const c3 = createContainer();
    const host3 = c3.resolve(TOKENS.PluginHost);
    host3.use(es2);
    await host3.setupAll();
    c3.resolve(TOKENS.Bus).emit({ type: 'epochEnd', epoch: 2, totalEpochs: 5, metrics: { loss: 0.5, aux: Number.NaN } });
    await c3.resolve(TOKENS.Bus).drain();
    expect(host3.stopRequested).toEqual({ by: 'es-aux', reason: 'es-aux: aux is NaN at epoch 2' });
    expect(es2.getState().stoppedEpoch).toBe(2);
    const lenient = new EarlyStoppingPlugin({ monitor: 'aux', stopOnNonFinite: false });
    expect(lenient.observe(2, Number.NaN)).toBe(false);
  });

  it('rejects bad options with the field name', () => {
    expect(() => new EarlyStoppingPlugin({ patience: -1 })).toThrow(/earlyStopping\.patience/);
    expect(() => new EarlyStoppingPlugin({ mode: 'up' as never })).toThrow(/earlyStopping\.mode/);
  });
});
