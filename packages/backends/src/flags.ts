import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';

/*
 * dfd's switches for its wasm kernels, as tfjs environment flags: read with tf.env().get(name),
 * set with tf.env().set(name, value) (or the setter functions of src/winograd.ts, which do just
 * that), in a browser also from the page URL (`?tfjsflags=DFD_WASM_WINOGRAD:false`, tfjs's own
 * mechanism), and in Node defaulted from the environment variable of the same name. They are
 * registered when this module loads (every entry of @dfd/backends that selects or registers the
 * wasm kernels imports it).
 */

/** Which Winograd variant 3x3 convolutions use: F(4x4,3x3), F(6x6,3x3), or chosen per convolution ('auto'). */
export type WinogradTile = 'auto' | 4 | 6;

/** A dfd flag: its name, default, allowed values and what it switches. */
export interface DfdFlag {
  readonly name: string;
  readonly default: boolean | WinogradTile;
  /** The values it takes, as the error for a bad one lists them. */
  readonly values: string;
  readonly doc: string;
}

/** Every flag dfd registers on tf.env(), with its default (before the environment variable). */
export const DFD_FLAGS = [
  {
    name: 'DFD_WASM_WINOGRAD',
    default: true,
    values: 'true or false',
    doc: "3x3 stride-1 convolutions on wasm by Winograd (inference from a frozen filter's second use; training too while DFD_WASM_WINOGRAD_TRAINING is on). Off: XNNPACK's direct convolution everywhere, and the cached transformed filters are freed.",
  },
  {
    name: 'DFD_WASM_WINOGRAD_TRAINING',
    default: true,
    values: 'true or false',
    doc: 'Winograd also for training convolutions (forward convolutions while gradients are recorded, and stride-1 input gradients), with the filter transformed per call where that pays. Off: training convolutions stay direct.',
  },
  {
    name: 'DFD_WASM_WINOGRAD_TILE',
    default: 'auto',
    values: "'auto', 4 or 6",
    doc: "The Winograd variant: 4 for F(4x4,3x3), 6 for F(6x6,3x3), 'auto' for F(6x6) where F(4x4)'s tiles would waste much of their work on padding (a 6x6 map), F(4x4) elsewhere.",
  },
] as const satisfies readonly DfdFlag[];

/** The name of one of {@link DFD_FLAGS}. */
export type DfdFlagName = (typeof DFD_FLAGS)[number]['name'];

type FlagValue = boolean | number | string;

function flag(name: DfdFlagName): DfdFlag {
  return DFD_FLAGS.find((f) => f.name === name)!;
}

function invalid(name: DfdFlagName, value: unknown, from: string): DfdError {
  const f = flag(name);
  return new DfdError(
    'E_BACKEND_OPTION',
    `${from} ${name} must be ${f.values}, got ${JSON.stringify(value)}; set it with tf.env().set('${name}', ${f.default === 'auto' ? "'auto'" : String(f.default)}) ` +
      `(in Node also ${name}=... in the environment, in a browser ?tfjsflags=${name}:...)`,
  );
}

/** `value` as the flag's type, or undefined when it is not one of its values. */
function parse(name: DfdFlagName, value: unknown): boolean | WinogradTile | undefined {
  if (flag(name).default === 'auto') {
    const v = typeof value === 'string' ? value.trim().toLowerCase() : value;
    if (v === 'auto') return 'auto';
    if (v === 4 || v === '4') return 4;
    if (v === 6 || v === '6') return 6;
    return undefined;
  }
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (['1', 'true', 'on', 'yes'].includes(v)) return true;
    if (['0', 'false', 'off', 'no'].includes(v)) return false;
  }
  return undefined;
}

/** The flag's default: the Node environment variable of the same name when set, else {@link DFD_FLAGS}'s. */
function fromEnvironment(name: DfdFlagName): FlagValue {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
  if (env == null || env.trim() === '') return flag(name).default;
  const v = parse(name, env);
  if (v === undefined) throw invalid(name, env, 'environment variable');
  return v;
}

type Listener = (value: boolean | WinogradTile) => void;
const listeners = new Map<DfdFlagName, Listener[]>();

/** Calls `listener` with the new value (parsed) whenever `name` is set (tf.env().set or a dfd setter). */
export function onFlagSet(name: DfdFlagName, listener: Listener): void {
  listeners.set(name, [...(listeners.get(name) ?? []), listener]);
}

let registered = false;

/**
 * Registers {@link DFD_FLAGS} on tf.env() (once; runs when this module loads). A value that is not
 * one of the flag's throws from tf.env().set, and from every read until it is fixed. When another
 * copy of @dfd/backends registered a flag first, its set hook still runs (each copy frees its own
 * Winograd cache).
 */
function registerDfdFlags(): void {
  if (registered) return;
  registered = true;
  const registry = (tf.env() as unknown as { flagRegistry: Record<string, { setHook?: (value: FlagValue) => void } | undefined> }).flagRegistry;
  for (const { name } of DFD_FLAGS) {
    const previous = registry[name]?.setHook;
    try {
      tf.env().registerFlag(
        name,
        () => fromEnvironment(name),
        (value) => {
          previous?.(value);
          const v = parse(name, value);
          if (v === undefined) throw invalid(name, value, 'flag');
          for (const l of listeners.get(name) ?? []) l(v);
        },
      );
    } catch {
      // A bad value from the page URL (tfjs sets it while registering): reads say what is wrong.
    }
  }
}

registerDfdFlags();

/** The value of a boolean dfd flag; a bad value throws DfdError E_BACKEND_OPTION naming the flag. */
export function flagOn(name: 'DFD_WASM_WINOGRAD' | 'DFD_WASM_WINOGRAD_TRAINING'): boolean {
  return read(name) as boolean;
}

/** The value of DFD_WASM_WINOGRAD_TILE (see {@link flagOn}). */
export function winogradTileFlag(): WinogradTile {
  return read('DFD_WASM_WINOGRAD_TILE') as WinogradTile;
}

function read(name: DfdFlagName): boolean | WinogradTile {
  const value = tf.env().get(name);
  const v = parse(name, value);
  if (v === undefined) throw invalid(name, value, 'flag');
  return v;
}

/** Reads every dfd flag, so that a bad value (environment, URL, tf.env().set) fails here rather than in a kernel. */
export function checkDfdFlags(): void {
  for (const { name } of DFD_FLAGS) read(name);
}
