import { DfdError, TOKENS, type EventBus, type InjectionToken } from '@dfd/core';
import { DatasetFormatError, DatasetSpecError } from './errors.js';
import { escapeSpecLocation, parseSpec, unescapeSpecLocation } from './spec.js';
import type { Dataset, DatasetContext, DatasetPlugin, DatasetWarning } from './types.js';

/** DI token of the {@link DatasetRegistry} (the same symbol as `TOKENS.DatasetRegistry`). */
export const DATASET_REGISTRY = TOKENS.DatasetRegistry as InjectionToken<DatasetRegistry>;

/** Options of {@link DatasetRegistry.resolve}. */
export interface ResolveOptions {
  /** Bus that receives `warning` events for counted skips. */
  bus?: EventBus;
  /** Allow splits with no samples (default false: an empty split that exists is an error). */
  allowEmpty?: boolean;
}

let pathProbe: ((path: string) => Promise<boolean>) | undefined;

/**
 * Sets how the registry asks whether a path exists (`@dfd/datasets/node` installs one), so a spec
 * such as `folder:/x/ds?v2` can say that `/x/ds?v2` exists and how to write its `?` (%3F).
 */
export function setSpecPathProbe(probe: ((path: string) => Promise<boolean>) | undefined): void {
  pathProbe = probe;
}

async function pathExists(path: string): Promise<boolean> {
  try {
    return pathProbe ? await pathProbe(path) : false;
  } catch {
    return false;
  }
}

/** Registry of dataset plugins by name; resolves specs like `rafdb:/data/RAF-DB` into datasets. */
export class DatasetRegistry {
  private readonly plugins = new Map<string, DatasetPlugin>();

  constructor(plugins: Iterable<DatasetPlugin> = []) {
    for (const p of plugins) this.register(p);
  }

  /** Adds a plugin; a second plugin with the same name replaces the first only with `override`. */
  register(plugin: DatasetPlugin, options: { override?: boolean } = {}): this {
    assertDatasetPlugin(plugin, 'register()');
    const name = plugin.name.toLowerCase();
    if (this.plugins.has(name) && !options.override) {
      throw new DatasetSpecError(`a dataset plugin named '${name}' is already registered; pass {override: true} to replace it`);
    }
    this.plugins.set(name, plugin);
    return this;
  }

  /** The plugin registered under `name`, if any. */
  get(name: string): DatasetPlugin | undefined {
    return this.plugins.get(name.toLowerCase());
  }

  /** Whether a plugin named `name` is registered. */
  has(name: string): boolean {
    return this.plugins.has(name.toLowerCase());
  }

  /** Every registered plugin, in registration order. */
  list(): DatasetPlugin[] {
    return [...this.plugins.values()];
  }

  /** Parses `spec`, validates the location with the plugin and loads it. */
  async resolve(spec: string, options: ResolveOptions = {}): Promise<Dataset> {
    const parsed = parseSpec(spec);
    const plugin = this.get(parsed.plugin);
    if (!plugin) {
      throw new DatasetSpecError(
        `no dataset plugin '${parsed.plugin}' (spec '${spec}'); registered: ${[...this.plugins.keys()].join(', ') || 'none'}; add one with --dataset-plugin <module>`,
      );
    }
    const literal = parsed.text.trim().slice(parsed.plugin.length + 1);
    // `folder:/x/ds?v2` where /x/ds?v2 exists: the '?' was meant as part of the path.
    const literalHint = literal.includes('?') && (await pathExists(unescapeSpecLocation(literal)))
      ? ` ${unescapeSpecLocation(literal)} exists: if you meant that path, write its '?' as %3F (${parsed.plugin}:${escapeSpecLocation(unescapeSpecLocation(literal))})`
      : '';
    if (plugin.options) {
      const unknown = Object.keys(parsed.options).filter((k) => !plugin.options!.includes(k));
      if (unknown.length > 0) {
        const known = plugin.options.length ? `it reads ${plugin.options.join(', ')}` : 'it reads none';
        throw new DatasetSpecError(
          `dataset spec '${spec}': unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} for plugin '${plugin.name}' (${known}); a '?' in a path is written %3F.${literalHint}`,
        );
      }
    }
    if (plugin.validate) {
      const issues = await plugin.validate(parsed.location, parsed.options);
      const errors = issues.filter((i) => i.severity === 'error');
      if (errors.length > 0) {
        const first = errors[0]!;
        throw new DatasetFormatError(
          { file: first.file ?? parsed.location },
          `${errors.map((e) => e.message).join('; ')} (while validating '${spec}' with plugin '${plugin.name}')`,
        );
      }
    }
    const warnings: DatasetWarning[] = [];
    const context = createDatasetContext(options.bus, plugin.name, warnings);
    if (literalHint) context.warn({ kind: 'spec-question-mark', message: `'${spec}': read the location as ${parsed.location} with options after the '?';${literalHint}`, count: 1, file: unescapeSpecLocation(literal) });
    let dataset: Dataset;
    try {
      dataset = await plugin.load(parsed.location, parsed.options, context);
    } catch (err) {
      // File-system failures (EACCES, ENOTDIR, ...) become typed errors naming the path.
      const e = err as { code?: unknown; path?: string; message?: string } | null;
      if (!(err instanceof DfdError) && e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
        throw new DatasetFormatError({ file: e.path ?? parsed.location }, `${e.code}: ${e.message} (while loading '${spec}')`, { cause: err });
      }
      throw err;
    }
    if (!options.allowEmpty) {
      const splits = Object.entries(dataset.splits).filter(([, s]) => s !== undefined);
      if (splits.length === 0) throw new DatasetFormatError({ file: parsed.location }, `dataset '${spec}' has no splits`, undefined);
      for (const [name, samples] of splits) {
        if (samples!.length === 0) {
          throw new DatasetFormatError({ file: parsed.location }, `split '${name}' of '${spec}' is empty`, { cause: dataset.warnings });
        }
      }
    }
    // Warnings the plugin recorded through the context and those it put on the dataset itself.
    const merged = [...dataset.warnings, ...warnings.filter((w) => !dataset.warnings.includes(w))];
    // The spec text names the dataset everywhere (reports, evaluation targets).
    return { ...dataset, name: spec.trim(), warnings: merged };
  }
}

/** A {@link DatasetContext} that records warnings and publishes them on `bus`. */
export function createDatasetContext(bus: EventBus | undefined, source: string, sink: DatasetWarning[] = []): DatasetContext {
  return {
    bus,
    warn(warning) {
      sink.push(warning);
      bus?.emit({
        type: 'warning',
        source: `datasets/${source}`,
        message: warning.message,
        detail: { kind: warning.kind, count: warning.count, ...(warning.file ? { file: warning.file } : {}) },
      });
    },
  };
}

/** Throws a DatasetSpecError unless `value` looks like a {@link DatasetPlugin}. */
export function assertDatasetPlugin(value: unknown, where: string): asserts value is DatasetPlugin {
  const p = value as Partial<DatasetPlugin> | null;
  if (!p || typeof p !== 'object' || typeof p.name !== 'string' || !/^[a-z][a-z0-9_-]+$/i.test(p.name) || typeof p.load !== 'function') {
    throw new DatasetSpecError(
      `${where}: not a dataset plugin; expected an object with a 'name' (letters, digits, - or _, at least 2 characters), 'labels' and a 'load(location, options, context)' function`,
    );
  }
  if (!p.labels || typeof p.labels.expression !== 'boolean' || !Array.isArray(p.labels.factors)) {
    throw new DatasetSpecError(`${where}: dataset plugin '${p.name}' needs 'labels: {expression: boolean, factors: FactorSpec[]}'`);
  }
}
