import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DfdPlugin, StepHookContext } from '@dfd/core';
import { EarlyStoppingPlugin } from '@dfd/plugin-early-stopping';
import { JsonlLoggerPlugin } from '@dfd/plugin-jsonl-logger';
import { GammaSchedulerPlugin } from '@dfd/plugin-schedulers';
import { validateConfig, trainConfigSchema, eifeConfigSchema } from '@dfd/trainer';
import { createDefaultPluginRegistry, createDefaultPlugins } from './plugins.js';

describe('createDefaultPlugins (the composition root)', () => {
  const train = validateConfig(trainConfigSchema, { source: 'synthetic:studio', out: 'runs/x', plugins: [{ name: 'early-stopping', options: { patience: 2 } }] });

  it('stage 2 defaults: lr, gamma and lambda schedulers from the config, console, metrics log, config plugins', () => {
    const plugins = createDefaultPlugins(train);
    expect(plugins.map((p) => p.name)).toEqual(['lr-scheduler', 'gamma-scheduler', 'lambda-scheduler', 'console', 'jsonl-logger', 'early-stopping']);
    expect((plugins[1] as GammaSchedulerPlugin).spec).toEqual({ name: 'paper' });
    expect(plugins[4]).toBeInstanceOf(JsonlLoggerPlugin);
    expect((plugins[4] as unknown as { path: string }).path).toBe(join(resolve('runs/x'), 'metrics.jsonl'));
    expect(plugins[5]).toBeInstanceOf(EarlyStoppingPlugin);
  });

  it("stage 1 has no gamma or lambda; console false and cosine false leave theirs out", () => {
    const eife = validateConfig(eifeConfigSchema, { dataset: 'synthetic:studio', factors: ['age'], out: 'runs/e', console: false, schedule: { cosine: false } });
    expect(createDefaultPlugins(eife).map((p) => p.name)).toEqual(['jsonl-logger']);
  });

  it("a user's plugin replaces the default of the same name in place; others are added", () => {
    const mine: DfdPlugin = { name: 'gamma-scheduler', setup() {}, beforeStep: (ctx: StepHookContext) => void (ctx.controls.gamma = 0.5) };
    const extra: DfdPlugin = { name: 'recorder', setup() {} };
    const plugins = createDefaultPlugins({ ...train, console: false, plugins: [] }, { plugins: [mine, extra] });
    expect(plugins.map((p) => p.name)).toEqual(['lr-scheduler', 'gamma-scheduler', 'lambda-scheduler', 'jsonl-logger', 'recorder']);
    expect(plugins[1]).toBe(mine);
  });

  it('a config entry (--plugin gamma-scheduler:{...}) replaces the default scheduler of that name', () => {
    const c = validateConfig(trainConfigSchema, { source: 'synthetic:studio', out: 'runs/x', console: false, plugins: [{ name: 'gamma-scheduler', options: { name: 'constant', value: 0.25 } }] });
    const plugins = createDefaultPlugins(c);
    expect(plugins.map((p) => p.name)).toEqual(['lr-scheduler', 'gamma-scheduler', 'lambda-scheduler', 'jsonl-logger']);
    expect((plugins[1] as GammaSchedulerPlugin).spec).toEqual({ name: 'constant', value: 0.25 });
  });

  it('the registry knows every plugin of the repository', () => {
    expect(createDefaultPluginRegistry().list().map((e) => e.name)).toEqual(['console', 'early-stopping', 'gamma-scheduler', 'jsonl-logger', 'lambda-scheduler', 'lr-scheduler', 'schedule-monitor']);
  });
});
