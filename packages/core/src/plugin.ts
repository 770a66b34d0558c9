import type { DependencyContainer } from 'tsyringe';
import type { EventBus, EventHandler } from './bus.js';
import { DfdError } from './errors.js';
import type { DfdEventType, EventOf } from './events.js';

/** What a plugin receives in {@link DfdPlugin.setup}. */
export interface PluginContext {
  /** The run's event bus. */
  readonly bus: EventBus;
  /** The run's DI container (child container: private to this run). */
  readonly container: DependencyContainer;
  /** The run configuration, read-only. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Ask the run to stop after the current step; the first request wins. */
  requestStop(reason: string): void;
  /** Subscribe to bus events; errors in `handler` become `error` events naming this plugin. */
  on<T extends DfdEventType>(type: T | '*', handler: EventHandler<EventOf<T>>): void;
}

/**
 * The controls of one optimizer step, set by `beforeStep` hooks (a scheduler plugin writes the
 * values it owns). The trainer resets them before every step: `learningRates` to the base rate of
 * each parameter group, `gamma` and `lambda` to unset. What a task needs and no plugin set is an
 * error of the task (stage 2 with MI heads needs both), never a silent default.
 */
export interface StepControls {
  /** Weight of the MI loss in L = L_cls + gamma L_MI (Eq. 10). */
  gamma?: number;
  /** GRL coefficient (Eq. 9). */
  lambda?: number;
  /**
   * Learning rate of each parameter group for this step (absolute rates, e.g. `heads`,
   * `backbone`; start: {@link StepHookContext.baseLearningRates}). A multiplier m is
   * `base * m`; the cosine scheduler writes PyTorch's closed form of the rate itself.
   */
  learningRates: Record<string, number>;
}

/** What a {@link DfdPlugin.beforeStep} hook sees: where the run is, and the step's controls. */
export interface StepHookContext {
  /** Training stage (`dfd`, `eife`). */
  readonly stage: string;
  /** 0-based index of the running epoch. */
  readonly epoch: number;
  readonly totalEpochs: number;
  /** 0-based index of this step within its epoch. */
  readonly stepInEpoch: number;
  readonly stepsPerEpoch: number;
  /** Optimizer steps done before this one (0 at the first step). */
  readonly globalStep: number;
  readonly totalSteps: number;
  /** Progress of this step: globalStep / totalSteps, in [0, 1). */
  readonly p: number;
  /** The configured learning rate of each parameter group. */
  readonly baseLearningRates: Readonly<Record<string, number>>;
  /** Set by the hooks, read by the trainer after the last one. */
  readonly controls: StepControls;
}

/**
 * A plugin: a named object with hooks. Shaped after Vite/Rollup plugins (explicit `enforce`
 * ordering) and Lightning callbacks (`getState`/`setState` so that resume is exact).
 */
export interface DfdPlugin<S = unknown> {
  /** Unique name; also the key of its state inside checkpoints. */
  readonly name: string;
  /** Runs before (`pre`) or after (`post`) normal plugins; registration order within a group. */
  readonly enforce?: 'pre' | 'post';
  /** Called once when the run starts, before any event. May subscribe to the bus. */
  setup(context: PluginContext): void | Promise<void>;
  /**
   * Called before every optimizer step, synchronously, in plugin order (`pre`, normal, `post`,
   * then registration order; a later plugin overrides an earlier one's value), to steer the step
   * through `ctx.controls` (the Keras LearningRateScheduler / Lightning callback pattern): the
   * gamma, lambda and learning-rate schedulers of `@dfd/plugin-schedulers` are such plugins. It
   * must depend only on `ctx` and the plugin's own checkpointed state, so that a resumed run
   * steers its steps exactly as the uninterrupted one. Unlike bus handlers, a throw here fails
   * the run (a step with a wrong gamma must not happen silently).
   */
  beforeStep?(ctx: StepHookContext): void;
  /** Called once when the run ends (also after a failure). */
  teardown?(): void | Promise<void>;
  /** JSON-serialisable state to save into checkpoints. */
  getState?(): S;
  /** Restore state saved by {@link getState} (called after setup, before training resumes). */
  setState?(state: S): void;
}

/** A stop request made by a plugin. */
export interface StopRequest {
  by: string;
  reason: string;
}

const ENFORCE_RANK = { pre: 0, normal: 1, post: 2 } as const;

/**
 * Owns the plugins of one run: orders them, sets them up, isolates their failures (a failing
 * plugin produces an `error` event, never a crashed run), collects and restores their state.
 */
export class PluginHost {
  private readonly plugins: DfdPlugin[] = [];
  private stop: StopRequest | undefined;
  private active = false;

  constructor(
    private readonly bus: EventBus,
    private readonly container: DependencyContainer,
    private readonly config: Readonly<Record<string, unknown>> = {},
  ) {}

  /** Add a plugin. Names must be unique within a run. */
  use(plugin: DfdPlugin): this {
    if (!plugin || typeof plugin.name !== 'string' || typeof plugin.setup !== 'function') {
      throw new DfdError('E_PLUGIN_INVALID', 'A plugin must be an object with a string `name` and a `setup(context)` function.');
    }
    if (this.plugins.some((p) => p.name === plugin.name)) {
      throw new DfdError('E_PLUGIN_DUPLICATE', `Plugin '${plugin.name}' is registered twice; give each instance its own name.`);
    }
    this.plugins.push(plugin);
    return this;
  }

  /** The plugins in execution order. */
  list(): readonly DfdPlugin[] {
    return this.plugins
      .map((p, i) => ({ p, i }))
      .sort((x, y) => ENFORCE_RANK[x.p.enforce ?? 'normal'] - ENFORCE_RANK[y.p.enforce ?? 'normal'] || x.i - y.i)
      .map(({ p }) => p);
  }

  /** Set up every plugin in order. A plugin whose setup throws is reported and skipped. */
  async setupAll(): Promise<void> {
    this.active = true;
    for (const plugin of this.list()) {
      const context: PluginContext = {
        bus: this.bus,
        container: this.container,
        config: this.config,
        requestStop: (reason) => this.requestStop(plugin.name, reason),
        on: (type, handler) => {
          this.bus.subscribe(type, handler, plugin.name);
        },
      };
      try {
        await plugin.setup(context);
      } catch (err) {
        this.reportError(plugin.name, 'setup', err);
      }
    }
  }

  /** Tear down every plugin in reverse order; failures are reported, not thrown. */
  async teardownAll(): Promise<void> {
    await this.bus.drain();
    for (const plugin of [...this.list()].reverse()) {
      try {
        await plugin.teardown?.();
      } catch (err) {
        this.reportError(plugin.name, 'teardown', err);
      }
    }
    this.active = false;
  }

  /**
   * Runs every plugin's {@link DfdPlugin.beforeStep} in order on `ctx`. A hook that throws, or
   * leaves a control that is not a finite number (a learning rate below 0, a group that does not
   * exist), throws a DfdError `E_PLUGIN_STEP` naming the plugin.
   */
  beforeStep(ctx: StepHookContext): void {
    const groups = Object.keys(ctx.baseLearningRates);
    for (const plugin of this.list()) {
      if (!plugin.beforeStep) continue;
      try {
        plugin.beforeStep(ctx);
      } catch (err) {
        throw new DfdError('E_PLUGIN_STEP', `plugin '${plugin.name}' failed in beforeStep at step ${ctx.globalStep + 1}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      const c = ctx.controls;
      const bad = (what: string, value: unknown) => new DfdError('E_PLUGIN_STEP', `plugin '${plugin.name}' set ${what} to ${String(value)} at step ${ctx.globalStep + 1}; it must be a finite number${what.startsWith('learningRates') ? ' >= 0' : ''}.`);
      for (const key of ['gamma', 'lambda'] as const) {
        if (c[key] !== undefined && !(typeof c[key] === 'number' && Number.isFinite(c[key]))) throw bad(key, c[key]);
      }
      for (const [g, lr] of Object.entries(c.learningRates)) {
        if (!groups.includes(g)) throw new DfdError('E_PLUGIN_STEP', `plugin '${plugin.name}' set the learning rate of group '${g}', which does not exist; the groups are ${groups.join(', ')}.`);
        if (!(typeof lr === 'number' && Number.isFinite(lr) && lr >= 0)) throw bad(`learningRates.${g}`, lr);
      }
    }
  }

  /** Record a stop request (first one wins). */
  requestStop(by: string, reason: string): void {
    if (!this.stop) this.stop = { by, reason };
  }

  /** The pending stop request, if any. */
  get stopRequested(): StopRequest | undefined {
    return this.stop;
  }

  /** Whether setupAll ran and teardownAll has not. */
  get isActive(): boolean {
    return this.active;
  }

  /** State of every stateful plugin, keyed by name. */
  getState(): Record<string, unknown> {
    const state: Record<string, unknown> = {};
    for (const plugin of this.plugins) {
      if (plugin.getState) state[plugin.name] = structuredClone(plugin.getState());
    }
    return state;
  }

  /** Restore plugin state; entries for plugins not present are reported as warnings. */
  setState(state: Record<string, unknown>): void {
    for (const [name, value] of Object.entries(state)) {
      const plugin = this.plugins.find((p) => p.name === name);
      if (!plugin?.setState) {
        this.bus.emit({ type: 'warning', source: 'plugins', message: `Checkpoint holds state for plugin '${name}', which is not active in this run; ignored.` });
        continue;
      }
      try {
        plugin.setState(structuredClone(value));
      } catch (err) {
        this.reportError(name, 'setState', err);
      }
    }
  }

  private reportError(name: string, hook: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.bus.emit({ type: 'error', source: name, message: `plugin '${name}' failed in ${hook}: ${message}`, stack: err instanceof Error ? err.stack : undefined });
  }
}

/**
 * `defaults` with every plugin of `overrides` that has the same name put in its place (a user's
 * `gamma-scheduler` replaces the default one, keeping its position), followed by the overrides
 * that replace nothing, in their order.
 */
export function mergePlugins(defaults: readonly DfdPlugin[], overrides: readonly DfdPlugin[]): DfdPlugin[] {
  const byName = new Map(overrides.map((p) => [p.name, p]));
  const merged = defaults.map((p) => byName.get(p.name) ?? p);
  const used = new Set(defaults.map((p) => p.name));
  return [...merged, ...overrides.filter((p) => !used.has(p.name))];
}

/** Builds a plugin from options (from the CLI or a config file). */
export type PluginFactory<O = any> = (options: O) => DfdPlugin;

/** Plugin factories by name, for the CLI and config files. */
export class PluginRegistry {
  private readonly factories = new Map<string, { factory: PluginFactory; description: string }>();

  /** Register a factory under `name`; re-registering a name replaces it. */
  register<O>(name: string, factory: PluginFactory<O>, description = ''): this {
    this.factories.set(name, { factory, description });
    return this;
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.factories.has(name);
  }

  /** Registered names with their descriptions, sorted. */
  list(): Array<{ name: string; description: string }> {
    return [...this.factories.entries()].map(([name, v]) => ({ name, description: v.description })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Build the plugin registered as `name`. */
  create(name: string, options: unknown = {}): DfdPlugin {
    const entry = this.factories.get(name);
    if (!entry) {
      const known = [...this.factories.keys()].sort().join(', ') || '(none)';
      throw new DfdError('E_PLUGIN_UNKNOWN', `Unknown plugin '${name}'. Registered plugins: ${known}. Register it with registry.register(name, factory) or pass a module path.`);
    }
    return entry.factory(options);
  }
}
