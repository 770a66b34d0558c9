import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { EventBus } from './bus.js';
import { PluginHost, PluginRegistry } from './plugin.js';
import { Rng } from './rng.js';
import { TOKENS } from './tokens.js';

/** Options of {@link createContainer}. */
export interface ContainerOptions {
  /** Run configuration, registered under {@link TOKENS.Config}. */
  config?: Record<string, unknown>;
  /** Seed of the run's root RNG (default 0). */
  seed?: number;
  /** A plugin registry to share (default: a fresh one). */
  pluginRegistry?: PluginRegistry;
  /** Parent container (default: tsyringe's global container). */
  parent?: DependencyContainer;
}

/**
 * A child container per run, pre-filled with the run's bus, config, RNG, plugin host and plugin
 * registry. Two containers never share these, so two trainers in one process are independent.
 */
export function createContainer(options: ContainerOptions = {}): DependencyContainer {
  const child = (options.parent ?? rootContainer).createChildContainer();
  const config = Object.freeze({ ...(options.config ?? {}) });
  const bus = new EventBus();
  child.register(TOKENS.Config, { useValue: config });
  child.register(TOKENS.Bus, { useValue: bus });
  child.register(TOKENS.Rng, { useValue: new Rng(options.seed ?? 0) });
  child.register(TOKENS.PluginRegistry, { useValue: options.pluginRegistry ?? new PluginRegistry() });
  child.register(TOKENS.PluginHost, { useValue: new PluginHost(bus, child, config) });
  return child;
}
