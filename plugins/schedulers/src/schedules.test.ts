import { describe, expect, it } from 'vitest';
import { EventBus, PluginHost, PluginRegistry, createContainer } from '@dfd/core';
import { cosineAnnealingLr, createGammaSchedule, createLambdaSchedule, dannLambda, linearRamp, paperGamma } from './schedules.js';
import { ScheduleMonitorPlugin, registerSchedulers } from './plugin.js';

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
    expect(() => createGammaSchedule({ name: 'cubic' } as never)).toThrow(/gamma\.name: unknown gamma schedule 'cubic'/);
    expect(() => createLambdaSchedule({ name: 'x' } as never)).toThrow(/lambda\.name/);
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
    bus.emit({ ...base, globalStep: 5, gamma: paperGamma(0.5), lambda: 1 });
    bus.emit({ ...base, globalStep: 5, gamma: 0.1, lambda: 1 });
    await bus.drain();
    await bus.drain();
    expect(plugin.mismatchCount).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/gamma at step 5 is 0.1/);
    expect(plugin.getState()).toEqual({ mismatches: 1 });
    expect(registerSchedulers(new PluginRegistry()).create('schedule-monitor')).toBeInstanceOf(ScheduleMonitorPlugin);
  });
});
