import { describe, expect, it } from 'vitest';
import { createContainer } from './container.js';
import type { DfdPlugin, StepHookContext } from './plugin.js';
import { PluginRegistry, mergePlugins } from './plugin.js';
import { resolveGammaSpec, resolveLambdaSpec } from './schedules.js';
import { TOKENS } from './tokens.js';

class BestTracker implements DfdPlugin<{ best: number; seen: number }> {
  readonly name = 'best-tracker';
  best = Infinity;
  seen = 0;
  setup(ctx: Parameters<DfdPlugin['setup']>[0]) {
    ctx.on('epochEnd', (e) => {
      this.seen++;
      this.best = Math.min(this.best, e.metrics.loss!);
      if (this.seen >= 3) ctx.requestStop('seen enough');
    });
  }
  getState() {
    return { best: this.best, seen: this.seen };
  }
  setState(s: { best: number; seen: number }) {
    this.best = s.best;
    this.seen = s.seen;
  }
}

function host() {
  const c = createContainer();
  return { bus: c.resolve(TOKENS.Bus), host: c.resolve(TOKENS.PluginHost) };
}

describe('PluginHost', () => {
  it('orders plugins pre -> normal -> post, then by registration', async () => {
    const { host: h } = host();
    const order: string[] = [];
    const mk = (name: string, enforce?: 'pre' | 'post'): DfdPlugin => ({ name, enforce, setup: () => void order.push(name) });
    h.use(mk('a')).use(mk('z', 'post')).use(mk('b', 'pre')).use(mk('c')).use(mk('y', 'pre'));
    await h.setupAll();
    expect(order).toEqual(['b', 'y', 'a', 'c', 'z']);
  });

  it("a plugin's state survives save and restore (JSON round trip)", async () => {
    const run1 = host();
    const p1 = new BestTracker();
    run1.host.use(p1);
    await run1.host.setupAll();
    for (const loss of [0.9, 0.4]) run1.bus.emit({ type: 'epochEnd', epoch: 0, totalEpochs: 5, metrics: { loss } });
    await run1.bus.drain();
    const saved = JSON.parse(JSON.stringify(run1.host.getState()));
    expect(saved).toEqual({ 'best-tracker': { best: 0.4, seen: 2 } });

    const run2 = host();
    const p2 = new BestTracker();
    run2.host.use(p2);
    await run2.host.setupAll();
    run2.host.setState(saved);
    expect(p2.best).toBe(0.4);
    run2.bus.emit({ type: 'epochEnd', epoch: 2, totalEpochs: 5, metrics: { loss: 0.6 } });
    await run2.bus.drain();
    expect(p2.seen).toBe(3);
    expect(run2.host.stopRequested).toEqual({ by: 'best-tracker', reason: 'seen enough' });
  });

  it('a failing plugin produces an error event and the others keep working', async () => {
    const { bus, host: h } = host();
    const errors: string[] = [];
    bus.subscribe('error', (e) => void errors.push(e.message));
    const healthy: number[] = [];
    h.use({ name: 'broken-setup', setup: () => { throw new Error('no config'); } });
    h.use({ name: 'broken-handler', setup: (ctx) => ctx.on('epochEnd', () => { throw new Error('boom'); }) });
    h.use({ name: 'healthy', setup: (ctx) => ctx.on('epochEnd', (e) => void healthy.push(e.epoch)) });
    h.use({ name: 'broken-teardown', setup: () => {}, teardown: () => { throw new Error('bye'); } });
    await h.setupAll();
    bus.emit({ type: 'epochEnd', epoch: 7, totalEpochs: 9, metrics: {} });
    await h.teardownAll();
    await bus.drain();
    expect(healthy).toEqual([7]);
    expect(errors).toEqual([
      "plugin 'broken-setup' failed in setup: no config",
      "broken-handler failed on 'epochEnd': boom",
      "plugin 'broken-teardown' failed in teardown: bye",
    ]);
  });

  it('rejects duplicate names and malformed plugins', () => {
    const { host: h } = host();
    h.use({ name: 'x', setup: () => {} });
    expect(() => h.use({ name: 'x', setup: () => {} })).toThrow(/registered twice/);
    expect(() => h.use({ name: 'y' } as any)).toThrow(/setup\(context\)/);
  });

  it('warns about checkpoint state of plugins that are not active', async () => {
    const { bus, host: h } = host();
    const warnings: string[] = [];
    bus.subscribe('warning', (e) => void warnings.push(e.message));
    h.setState({ ghost: { a: 1 } });
    await bus.drain();
    expect(warnings).toEqual(["Checkpoint holds state for plugin 'ghost', which is not active in this run; ignored."]);
  });
});

describe('PluginRegistry', () => {
  it('creates plugins by name with options and lists them', () => {
    const r = new PluginRegistry();
    r.register('const', (o: { v: number }) => ({ name: `const-${o.v}`, setup: () => {} }), 'constant');
    expect(r.create('const', { v: 3 }).name).toBe('const-3');
    expect(r.list()).toEqual([{ name: 'const', description: 'constant' }]);
    expect(() => r.create('nope')).toThrow("Unknown plugin 'nope'. Registered plugins: const.");
  });
});

function stepCtx(): StepHookContext {
  return { stage: 'dfd', epoch: 0, totalEpochs: 1, stepInEpoch: 2, stepsPerEpoch: 4, globalStep: 2, totalSteps: 4, p: 0.5, baseLearningRates: { heads: 1, backbone: 0.5 }, controls: { learningRates: { heads: 1, backbone: 0.5 } } };
}
const stepper = (name: string, set: (ctx: StepHookContext) => void, enforce?: 'pre' | 'post'): DfdPlugin => ({ name, enforce, setup() {}, beforeStep: set });

describe('beforeStep hooks', () => {
  it('run in plugin order (pre, normal, post); the last value written wins', () => {
    const host = createContainer().resolve(TOKENS.PluginHost);
    const order: string[] = [];
    host.use(stepper('late', (c) => (order.push('late'), (c.controls.gamma = 3)), 'post'));
    host.use(stepper('normal', (c) => (order.push('normal'), (c.controls.gamma = 2), (c.controls.learningRates.heads = c.baseLearningRates.heads! * c.p))));
    host.use(stepper('early', (c) => (order.push('early'), (c.controls.gamma = 1), (c.controls.lambda = 0.5)), 'pre'));
    host.use({ name: 'listener', setup() {} });
    const ctx = stepCtx();
    host.beforeStep(ctx);
    expect(order).toEqual(['early', 'normal', 'late']);
    expect(ctx.controls).toEqual({ gamma: 3, lambda: 0.5, learningRates: { heads: 0.5, backbone: 0.5 } });
  });
  it('a throwing hook or a bad control fails with E_PLUGIN_STEP naming the plugin', () => {
    const fails = (p: DfdPlugin) => {
      const host = createContainer().resolve(TOKENS.PluginHost);
      host.use(p);
      return () => host.beforeStep(stepCtx());
    };
    expect(fails(stepper('boom', () => { throw new Error('no'); }))).toThrow("plugin 'boom' failed in beforeStep at step 3: no");
    expect(fails(stepper('nan', (c) => (c.controls.gamma = Number.NaN)))).toThrow("plugin 'nan' set gamma to NaN at step 3; it must be a finite number.");
    expect(fails(stepper('neg', (c) => (c.controls.learningRates.heads = -1)))).toThrow("plugin 'neg' set learningRates.heads to -1 at step 3; it must be a finite number >= 0.");
    expect(fails(stepper('group', (c) => (c.controls.learningRates.attention = 1)))).toThrow("plugin 'group' set the learning rate of group 'attention', which does not exist; the groups are heads, backbone.");
    try {
      fails(stepper('boom', () => { throw new Error('no'); }))();
    } catch (e) {
      expect((e as { code: string }).code).toBe('E_PLUGIN_STEP');
    }
  });
});

describe('mergePlugins', () => {
  it('replaces defaults by name in place and appends the rest', () => {
    const p = (name: string, tag = ''): DfdPlugin & { tag: string } => ({ name, tag, setup() {} });
    const merged = mergePlugins([p('lr-scheduler'), p('gamma-scheduler'), p('console')], [p('gamma-scheduler', 'mine'), p('recorder')]) as Array<DfdPlugin & { tag: string }>;
    expect(merged.map((m) => `${m.name}${m.tag ? `:${m.tag}` : ''}`)).toEqual(['lr-scheduler', 'gamma-scheduler:mine', 'console', 'recorder']);
  });
});

describe('schedule vocabulary', () => {
  it('fills the defaults of a spec and names bad fields', () => {
    expect(resolveGammaSpec({ name: 'paper' })).toEqual({ name: 'paper', alpha: 10, scale: 1 });
    expect(resolveLambdaSpec({ name: 'linear', end: 0 })).toEqual({ name: 'linear', start: 0, end: 0 });
    expect(() => resolveGammaSpec('paper', 'schedule.gamma')).toThrow(`schedule.gamma: must be an object like {name: 'paper'}, got "paper".`);
    expect(() => resolveLambdaSpec({ name: 'constant', value: Number.POSITIVE_INFINITY })).toThrow('lambda.value: must be a finite number, got Infinity.');
  });
});
