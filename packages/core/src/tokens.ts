import type { InjectionToken } from 'tsyringe';
import type { EventBus } from './bus.js';
import type { PluginHost, PluginRegistry } from './plugin.js';
import type { Rng } from './rng.js';

/**
 * Injection tokens for every service shared through the DI container. Packages that provide a
 * service declare its token here (or export their own `InjectionToken`) so that the composition
 * root can swap implementations without touching the consumers.
 */
export const TOKENS = {
  /** The run's {@link EventBus}. */
  Bus: Symbol.for('dfd.Bus') as InjectionToken<EventBus>,
  /** The run configuration (plain object). */
  Config: Symbol.for('dfd.Config') as InjectionToken<Record<string, unknown>>,
  /** The run's root {@link Rng}. */
  Rng: Symbol.for('dfd.Rng') as InjectionToken<Rng>,
  /** The run's {@link PluginHost}. */
  PluginHost: Symbol.for('dfd.PluginHost') as InjectionToken<PluginHost>,
  /** The registry of plugin factories by name. */
  PluginRegistry: Symbol.for('dfd.PluginRegistry') as InjectionToken<PluginRegistry>,
  /** The dataset plugin registry (provided by `@dfd/datasets`). */
  DatasetRegistry: Symbol.for('dfd.DatasetRegistry') as InjectionToken<unknown>,
  /** The model factory (provided by `@dfd/model`). */
  ModelFactory: Symbol.for('dfd.ModelFactory') as InjectionToken<unknown>,
  /** The active tfjs backend name (provided by `@dfd/backends`). */
  Backend: Symbol.for('dfd.Backend') as InjectionToken<string>,
} as const;
