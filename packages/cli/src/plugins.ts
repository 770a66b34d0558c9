// The composition root's plugins (`@dfd/cli/plugins`): which concrete plugins a run gets by
// default. `@dfd/trainer` imports no plugin package; `dfd train`, `dfd train-eife`, `dfd demo` and
// `dfd grid` pass `(config) => createDefaultPlugins(config)` as the run's plugins, and so can code.
import { join, resolve } from 'node:path';
import { mergePlugins, PluginRegistry, type CosineLrSpec, type DfdPlugin, type GammaScheduleSpec, type LambdaScheduleSpec } from '@dfd/core';
import { ConsolePlugin, registerConsole, type ConsoleStream } from '@dfd/plugin-console';
import { registerEarlyStopping } from '@dfd/plugin-early-stopping';
import { JsonlLoggerPlugin, registerJsonlLogger } from '@dfd/plugin-jsonl-logger';
import { registerSchedulers, schedulerPlugins } from '@dfd/plugin-schedulers';

/** A plugin registry with every plugin of this repository: console, jsonl-logger, early-stopping, the schedulers and schedule-monitor. */
export function createDefaultPluginRegistry(): PluginRegistry {
  const r = new PluginRegistry();
  registerConsole(r);
  registerJsonlLogger(r);
  registerEarlyStopping(r);
  registerSchedulers(r);
  return r;
}

/**
 * What {@link createDefaultPlugins} reads of a validated run config (`TrainConfig` or `EifeConfig`
 * of `@dfd/trainer`, every default filled in; stage 1 has no gamma or lambda).
 */
export interface DefaultPluginsConfig {
  out: string;
  console: boolean;
  jsonl: boolean;
  plugins: Array<{ name: string; options: Record<string, unknown> }>;
  schedule: { cosine: CosineLrSpec | false; gamma?: GammaScheduleSpec; lambda?: LambdaScheduleSpec };
}

/** Options of {@link createDefaultPlugins}. */
export interface DefaultPluginsOptions {
  /** Stream of the console plugin (default process.stderr). */
  stream?: ConsoleStream;
  /** Where config `plugins: [{name, options}]` are looked up (default {@link createDefaultPluginRegistry}). */
  registry?: PluginRegistry;
  /**
   * Your plugins: one with the name of a default (`gamma-scheduler`, `lambda-scheduler`,
   * `lr-scheduler`, `console`, `jsonl-logger`) replaces it in place, the others are added after
   * the defaults (`mergePlugins` of @dfd/core).
   */
  plugins?: DfdPlugin[];
}

/**
 * The plugins of a run as `dfd train` composes them, from its validated config: the scheduler
 * plugins of `schedule` (`lr-scheduler`: cosine annealing unless `cosine: false`;
 * `gamma-scheduler`: the paper's gamma(p) by default; `lambda-scheduler`: 1 by default), the
 * console progress (`console`), the metrics log `<out>/metrics.jsonl` (`jsonl`), every config
 * `plugins` entry built from the registry, then `options.plugins`; a config entry or one of
 * `options.plugins` with the name of a plugin before it replaces that one in place.
 *
 * ```ts
 * const run = await createTrainer(config, { plugins: (c) => createDefaultPlugins(c, { plugins: [myGammaScheduler] }) });
 * ```
 */
export function createDefaultPlugins(config: DefaultPluginsConfig, options: DefaultPluginsOptions = {}): DfdPlugin[] {
  const registry = options.registry ?? createDefaultPluginRegistry();
  const metrics = join(resolve(config.out), 'metrics.jsonl');
  const defaults: DfdPlugin[] = [...schedulerPlugins(config.schedule)];
  if (config.console) defaults.push(new ConsolePlugin({ stream: options.stream }));
  if (config.jsonl) defaults.push(new JsonlLoggerPlugin({ path: metrics }));
  // A config entry (`--plugin gamma-scheduler:{...}`) replaces the default of its name too.
  const fromConfig = config.plugins.map((p) => registry.create(p.name, p.name === 'jsonl-logger' ? { path: metrics, ...p.options } : p.options));
  return mergePlugins(mergePlugins(defaults, fromConfig), options.plugins ?? []);
}
