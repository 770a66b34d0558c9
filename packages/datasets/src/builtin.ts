import { DatasetRegistry } from './registry.js';
import { syntheticPlugin } from './synthetic.js';
import type { DatasetPlugin } from './types.js';

/**
 * A registry with the browser-safe built-in plugins (`synthetic`) plus `extra`. On Node,
 * `createNodeDatasetRegistry` from `@dfd/datasets/node` adds the file-format plugins.
 */
export function createDatasetRegistry(extra: Iterable<DatasetPlugin> = []): DatasetRegistry {
  return new DatasetRegistry([syntheticPlugin, ...extra]);
}
