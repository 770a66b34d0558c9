import { Rng } from '@dfd/core';
import type { Sample } from './types.js';

/** Options of {@link limitSamples}. */
export interface LimitOptions {
  /** Seed of the draw (the run's seed): the same seed and samples give the same subset. */
  seed?: number;
  /**
   * The label the subset is spread over: a sample's class for the draw (default: its expression;
   * pass e.g. `(s) => s.factors?.age` for factor-only data). Samples without one form one group.
   */
  classOf?: (sample: Sample) => number | undefined;
}

/**
 * At most `limit` samples, drawn with a seeded generator and spread over the classes: classes
 * take turns (in a seeded order) giving one random sample each until `limit` are taken, so every
 * class is represented when `limit` >= the number of classes, and classes smaller than their
 * share give what they have. The subset keeps the dataset's order. `limit` undefined or >= the
 * number of samples returns `samples` itself. (The first N of a class-folder listing would all be
 * one class: `--limit` never takes a prefix.)
 */
export function limitSamples(samples: readonly Sample[], limit: number | undefined, options: LimitOptions = {}): readonly Sample[] {
  if (limit === undefined || limit >= samples.length) return samples;
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a whole number >= 0, got ${limit}`);
  const classOf = options.classOf ?? ((s: Sample) => s.expression);
  const rng = new Rng(`limit:${options.seed ?? 0}`);
  const groups = new Map<number | undefined, number[]>();
  samples.forEach((s, i) => {
    const c = classOf(s);
    const g = groups.get(c);
    if (g) g.push(i);
    else groups.set(c, [i]);
  });
  // Keys sorted so that the draw does not depend on which class the listing starts with.
  const keys = [...groups.keys()].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  const pools = keys.map((k) => shuffle(groups.get(k)!, rng));
  const order = shuffle(pools.map((_, i) => i), rng);
  const picked: number[] = [];
  for (let round = 0; picked.length < limit; round++) {
    for (const p of order) {
      if (picked.length >= limit) break;
      const idx = pools[p]![round];
      if (idx !== undefined) picked.push(idx);
    }
  }
  return picked.sort((a, b) => a - b).map((i) => samples[i]!);
}

function shuffle<T>(items: T[], rng: Rng): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
