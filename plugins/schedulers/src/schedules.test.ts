import { describe, expect, it } from 'vitest';
import { EventBus, PluginHost, PluginRegistry, createContainer } from '@dfd/core';
import { cosineAnnealingLr, createGammaSchedule, createLambdaSchedule, dannLambda, linearRamp, paperGamma } from './schedules.js';
import { CosineLrPlugin, GammaSchedulerPlugin, LambdaSchedulerPlugin, ScheduleMonitorPlugin, registerSchedulers, schedulerPlugins } from './plugin.js';
import type { StepHookContext } from '@dfd/core';

describe('gamma schedules', () => {
  it('paper gamma follows 2/(1+exp(-10p))-1 at hand-computed points', () => {
    expect(paperGamma(0)).toBe(0);
    // p = 0.1: 2/(1+e^-1) - 1 = tanh(0.5) = 0.46211715726...
    expect(paperGamma(0.1)).toBeCloseTo(0.46211715726000974, 14);
    expect(paperGamma(0.5)).toBeCloseTo(Math.tanh(2.5), 14);
    expect(paperGamma(1)).toBeCloseTo(0.999909204262595, 14);
    const g = createGammaSchedule();
    expect(g(0.3)).toBeCloseTo(Math.tanh(1.5), 14);
  });
  it('constant and linear gamma', () => {
    expect(createGammaSchedule({ name: 'constant', value: 0.25 })(0.9)).toBe(0.25);
    const lin = createGammaSchedule({ name: 'linear', start: 0.2, end: 1 });
    expect(lin(0)).toBeCloseTo(0.2, 15);
    expect(lin(0.5)).toBeCloseTo(0.6, 15);
    expect(lin(2)).toBeCloseTo(1, 15);
    expect(linearRamp(-1, 3, 5)).toBe(3);
  });
  it('unknown names throw a ConfigError naming the field', () => {
    expect(() => createGammaSchedule({ name: 'cubic' } as never)).toThrow(/gamma\.name: unknown schedule "cubic"; use paper, constant, linear/);
    expect(() => createLambdaSchedule({ name: 'x' } as never)).toThrow(/lambda\.name/);
    expect(() => createGammaSchedule({ name: 'paper', alpha: -1 })).toThrow(/gamma\.alpha: must be a number > 0, got -1/);
    expect(() => createGammaSchedule({ name: 'constant' } as never)).toThrow(/gamma\.value: schedule 'constant' needs value/);
    expect(() => createLambdaSchedule({ name: 'dann', gamma: 5 } as never)).toThrow(/lambda\.gamma: schedule 'dann' has no parameter 'gamma'; its parameters are alpha, max/);
  });
});

describe('lambda schedules', () => {
  it('constant (default 1), DANN, linear', () => {
    expect(createLambdaSchedule()(0.7)).toBe(1);
    expect(createLambdaSchedule({ name: 'constant', value: 0.3 })(0.1)).toBe(0.3);
    expect(createLambdaSchedule({ name: 'dann', max: 2 })(0.2)).toBeCloseTo(2 * Math.tanh(1), 14);
    expect(dannLambda(0.2, 5)).toBeCloseTo(Math.tanh(0.5), 14);
    expect(createLambdaSchedule({ name: 'linear', start: 1, end: 0 })(0.25)).toBeCloseTo(0.75, 15);
  });
});

describe('cosineAnnealingLr', () => {
  it('matches the closed form at t = 0, T/2, T', () => {
    expect(cosineAnnealingLr(0, 5e-4, 100)).toBeCloseTo(5e-4, 18);
    expect(cosineAnnealingLr(50, 5e-4, 100)).toBeCloseTo(2.5e-4, 18);
    expect(cosineAnnealingLr(100, 5e-4, 100, 1e-5)).toBeCloseTo(1e-5, 18);
    // t = 25 of 100: (1 + cos(pi/4)) / 2 = 0.853553390593...
    expect(cosineAnnealingLr(25, 1, 100)).toBeCloseTo(0.8535533905932737, 14);
  });
});

describe('ScheduleMonitorPlugin', () => {
  it('warns when a reported gamma leaves the schedule, and keeps state', async () => {
    const container = createContainer();
    const bus = new EventBus();
    const host = new PluginHost(bus, container);
    const plugin = new ScheduleMonitorPlugin();
    host.use(plugin);
    await host.setupAll();
    const warnings: string[] = [];
    bus.subscribe('warning', (e) => void warnings.push(e.message));
    const base = { type: 'batchEnd' as const, epoch: 0, step: 0, stepsPerEpoch: 10, totalSteps: 10, loss: { total: 1 }, learningRates: {} };
    // The step that ran at p = 0.5 (5 of 10 steps done before it) ends with globalStep 6.
    bus.emit({ ...base, globalStep: 6, p: 0.5, gamma: paperGamma(0.5), lambda: 1 });
    bus.emit({ ...base, globalStep: 6, p: 0.5, gamma: 0.1, lambda: 1 });
    await bus.drain();
    await bus.drain();
    expect(plugin.mismatchCount).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/gamma at step 6 is 0.1/);
    expect(plugin.getState()).toEqual({ mismatches: 1 });
    expect(registerSchedulers(new PluginRegistry()).create('schedule-monitor')).toBeInstanceOf(ScheduleMonitorPlugin);
  });
});

/** The context the trainer gives beforeStep hooks at `globalStep` of 10 steps (5 per epoch). */
function stepContext(globalStep: number): StepHookContext {
  const base = { heads: 5e-4, backbone: 1e-6 };
  return { stage: 'dfd', epoch: Math.floor(globalStep / 5), totalEpochs: 2, stepInEpoch: globalStep % 5, stepsPerEpoch: 5, globalStep, totalSteps: 10, p: globalStep / 10, baseLearningRates: base, controls: { learningRates: { ...base } } };
}

describe('scheduler plugins', () => {
  it('set gamma, lambda and the learning rates of a step from its context', async () => {
    const container = createContainer();
    const host = new PluginHost(new EventBus(), container);
    for (const p of schedulerPlugins({ cosine: { tMax: 4, etaMin: 1e-7 }, gamma: { name: 'paper' }, lambda: { name: 'dann', alpha: 5, max: 2 } })) host.use(p);
    expect(host.list().map((p) => p.name)).toEqual(['lr-scheduler', 'gamma-scheduler', 'lambda-scheduler']);
    const ctx = stepContext(7);
    host.beforeStep(ctx);
    expect(ctx.controls.gamma).toBe(paperGamma(0.7));
    expect(ctx.controls.lambda).toBe(2 * paperGamma(0.7, 5));
    // Epoch 1 of T_max 4: eta_min + (base - eta_min) (1 + cos(pi/4)) / 2.
    expect(ctx.controls.learningRates.heads).toBeCloseTo(1e-7 + (5e-4 - 1e-7) * 0.8535533905932737, 15);
    expect(ctx.controls.learningRates.backbone).toBe(cosineAnnealingLr(1, 1e-6, 4, 1e-7));
  });
  it('cosine false: no lr-scheduler, the base rates stay; stage 1 has no gamma or lambda scheduler', () => {
    expect(schedulerPlugins({ cosine: false, gamma: { name: 'constant', value: 0.5 }, lambda: { name: 'constant', value: 1 } }).map((p) => p.name)).toEqual(['gamma-scheduler', 'lambda-scheduler']);
    expect(schedulerPlugins({ cosine: { tMax: 100, etaMin: 0 } }).map((p) => p.name)).toEqual(['lr-scheduler']);
  });
  it('bad specs fail when the plugin is made, naming the config field', () => {
    expect(() => new GammaSchedulerPlugin({ name: 'linear', start: -1 })).toThrow(/schedule\.gamma\.start: must be a number >= 0, got -1/);
    expect(() => new LambdaSchedulerPlugin({ name: 'step' } as never)).toThrow(/schedule\.lambda\.name: unknown schedule "step"/);
    expect(() => new CosineLrPlugin({ tMax: 0, etaMin: 0 })).toThrow(/schedule\.cosine\.tMax: must be a number > 0, got 0/);
  });
  it('the registry builds them by name from their options', () => {
    const r = registerSchedulers(new PluginRegistry());
    const g = r.create('gamma-scheduler', { name: 'constant', value: 0.25 });
    const ctx = stepContext(3);
    g.beforeStep!(ctx);
    expect(ctx.controls.gamma).toBe(0.25);
    expect(r.list().map((e) => e.name)).toEqual(['gamma-scheduler', 'lambda-scheduler', 'lr-scheduler', 'schedule-monitor']);
  });
});
