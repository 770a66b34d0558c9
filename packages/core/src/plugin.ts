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
