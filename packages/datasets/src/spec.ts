import { DatasetSpecError } from './errors.js';
import type { DatasetSpec, SpecOptions } from './types.js';

const SPEC_RE = /^([a-z][a-z0-9_-]*):(.*)$/i;

/**
 * Undoes {@link escapeSpecLocation}: `%3F` is `?` and `%25` is `%` in a spec's location (only
 * those two; any other `%` stays as it is), so a folder whose name holds a `?` can be named.
 */
export function unescapeSpecLocation(location: string): string {
  return location.replace(/%(3f|25)/gi, (m) => (m.toLowerCase() === '%3f' ? '?' : '%'));
}

/** Writes a location so that {@link parseSpec} reads it back: `%` as `%25`, `?` as `%3F`. */
export function escapeSpecLocation(location: string): string {
  return location.replace(/%(3f|25)/gi, '%25$1').replace(/\?/g, '%3F');
}

/**
 * Parses `plugin:location?key=value&...` (e.g. `rafdb:/data/RAF-DB`, `synthetic:wild?train=2000`).
 * The first `?` starts the options; a `?` that belongs to the location is written `%3F` (and a
 * `%3F` or `%25` that belongs to it `%253F`, `%2525`).
 */
export function parseSpec(text: string): DatasetSpec {
  const m = SPEC_RE.exec(text.trim());
  if (!m || m[1]!.length < 2) {
    // A one-letter prefix is a Windows drive (C:\data), not a plugin.
    throw new DatasetSpecError(`dataset spec '${text}' has no plugin prefix; write it as <plugin>:<location>, e.g. folder:${text} or synthetic:studio`);
  }
  const plugin = m[1]!.toLowerCase();
  const rest = m[2]!;
  const q = rest.indexOf('?');
  const location = unescapeSpecLocation(q >= 0 ? rest.slice(0, q) : rest);
  const options: Record<string, string> = {};
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(rest.slice(q + 1))) options[k] = v;
  }
  return { plugin, location, options, text };
}

/** Reads an integer option, with a default and bounds; throws DatasetSpecError naming the option. */
export function intOption(options: SpecOptions, key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = options[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new DatasetSpecError(`option '${key}=${raw}' must be an integer in [${min}, ${max}]`);
  }
  return n;
}

/** Reads an option that must be one of `choices`. */
export function choiceOption<T extends string>(options: SpecOptions, key: string, choices: readonly T[], fallback: T): T {
  const raw = options[key];
  if (raw === undefined || raw === '') return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new DatasetSpecError(`option '${key}=${raw}' must be one of ${choices.join(', ')}`);
  }
  return raw as T;
}
