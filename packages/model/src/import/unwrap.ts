import { CheckpointFormatError } from './errors.js';
import { typeName } from './pickle.js';
import type { StateDict, TensorEntry } from './tensor.js';

/** Keys under which training scripts commonly nest the weights, tried in this order. */
export const STATE_DICT_KEYS = ['state_dict', 'model_state_dict', 'model', 'net', 'network', 'module', 'weights', 'params', 'model_state'];

/** Whole-checkpoint key prefixes added by wrappers: DataParallel/DDP (`module.`) and torch.compile (`_orig_mod.`). */
export const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

/** Options controlling how the state dict is found inside a checkpoint. */
export interface UnwrapOptions {
  /** Dotted path to the state dict inside the checkpoint (e.g. `state_dict`, `ema.model`); default: search `STATE_DICT_KEYS`. */
  entry?: string;
  /** Remove a `module.` / `_orig_mod.` prefix shared by every key (default true). */
  stripWrapperPrefixes?: boolean;
}

/** What `unwrapStateDict` found: the tensors and where they came from. */
export interface UnwrapResult {
  stateDict: StateDict;
  /** Keys walked from the root to the state dict, e.g. `['state_dict']`; `[]` = the root itself. */
  path: string[];
  /** Wrapper prefixes removed from every key, in order, e.g. `['module.']`. */
  strippedPrefixes: string[];
  /** Non-tensor entries of the state dict that were left out (e.g. `_extra_state` objects). */
  skipped: string[];
}

function tensorCount(v: unknown, isTensor: (v: unknown) => boolean): number {
  if (!(v instanceof Map)) return 0;
  let n = 0;
  for (const [k, x] of v) if (typeof k === 'string' && isTensor(x)) n++;
  return n;
}

/**
 * Find the flat name -> tensor dict in an unpickled checkpoint and normalise its keys. `isTensor`
 * recognises leaves; `toEntry` materialises one, once per kept tensor (so unused tensors of the
 * file, e.g. optimizer state, are never decoded).
 */
export function unwrapStateDict(
  root: unknown,
  opts: UnwrapOptions & { name?: string },
  isTensor: (v: unknown) => boolean,
  toEntry: (v: unknown) => TensorEntry,
): UnwrapResult {
  const name = opts.name ?? 'checkpoint';
  let node: unknown = root;
  const path: string[] = [];
  if (opts.entry !== undefined && opts.entry !== '') {
    for (const part of opts.entry.split('.')) {
      if (!(node instanceof Map) || !node.has(part)) {
        const keys = node instanceof Map ? [...node.keys()].map(String).join(', ') : typeName(node);
        throw new CheckpointFormatError(name, `entry '${opts.entry}': no key '${part}' at '${path.join('.') || '<root>'}' (keys: ${keys})`);
      }
      node = node.get(part);
      path.push(part);
    }
  } else {
    // Descend through wrapper dicts until we reach a dict that itself holds tensors.
    for (let depth = 0; depth < 4 && tensorCount(node, isTensor) === 0 && node instanceof Map; depth++) {
      const map: Map<unknown, unknown> = node;
      const next = STATE_DICT_KEYS.find((k) => map.has(k) && map.get(k) instanceof Map);
      if (next === undefined) break;
      node = map.get(next);
      path.push(next);
    }
  }
  if (!(node instanceof Map) || tensorCount(node, isTensor) === 0) {
    const keys = node instanceof Map ? [...node.keys()].map(String).slice(0, 20).join(', ') : typeName(node);
    throw new CheckpointFormatError(
      name,
      `no state dict (a dict of tensors) found at '${path.join('.') || '<root>'}' (it holds: ${keys}); name the entry that holds the weights (e.g. entry 'state_dict')`,
    );
  }
  const stateDict: StateDict = new Map();
  const skipped: string[] = [];
  for (const [k, v] of node) {
    if (typeof k !== 'string' || !isTensor(v)) {
      skipped.push(String(k));
      continue;
    }
    stateDict.set(k, toEntry(v));
  }
  const strippedPrefixes: string[] = [];
  let sd = stateDict;
  if (opts.stripWrapperPrefixes !== false) {
    let changed = true;
    while (changed) {
      changed = false;
      for (const p of WRAPPER_PREFIXES) {
        if (sd.size > 0 && [...sd.keys()].every((k) => k.startsWith(p))) {
          sd = new Map([...sd].map(([k, v]) => [k.slice(p.length), v]));
          strippedPrefixes.push(p);
          changed = true;
        }
      }
    }
  }
  return { stateDict: sd, path, strippedPrefixes, skipped };
}
