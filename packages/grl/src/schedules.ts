import { GrlError } from './errors.js';

/**
 * A serialisable lambda schedule: plain JSON, so a GradientReversal layer can store it in its
 * config. `p` below is training progress in [0, 1]. The DANN slope is `alpha`, as in dfd's
 * schedule vocabulary (`@dfd/core`), where gamma is the MI-loss weight; `gamma` is still read as
 * its old name (layers saved before the rename), and `alpha` wins when both are given. (The
 * trainer does not use these: its GRL lambda comes from `@dfd/plugin-schedulers`.)
 */
export type LambdaSchedule =
  | { kind: 'constant'; value: number }
  | {
      kind: 'dann';
      alpha?: number;
      max?: number;
      /** @deprecated the old name of `alpha`. */
      gamma?: number;
    }
  | { kind: 'linear'; from: number; to: number }
  | { kind: 'step'; boundaries: number[]; values: number[] };

/** A constant lambda; `p` is ignored (the schedule the paper uses, with value 1). */
export function constantLambda(_p: number, value = 1): number {
  return value;
}

/**
 * The DANN schedule (Ganin & Lempitsky 2015): `max * (2 / (1 + exp(-alpha * p)) - 1)`, rising
 * smoothly from 0 at p = 0 towards `max`, so the adversarial signal starts weak while the
 * features are still noise. alpha = 10 as in DANN.
 */
export function dannLambda(p: number, alpha = 10, max = 1): number {
  return max * (2 / (1 + Math.exp(-alpha * clampProgress(p))) - 1);
}

/** Linear ramp from `from` at p = 0 to `to` at p = 1. */
export function linearLambda(p: number, from = 0, to = 1): number {
  return from + (to - from) * clampProgress(p);
}

/**
 * Piecewise constant: `values[i]` for `boundaries[i-1] <= p < boundaries[i]`
 * (`values` has one more entry than `boundaries`, boundaries ascend).
 */
export function stepLambda(p: number, boundaries: readonly number[], values: readonly number[]): number {
  if (values.length !== boundaries.length + 1) {
    throw new GrlError(
      'E_GRL_SCHEDULE',
      `stepLambda: values must have boundaries.length + 1 = ${boundaries.length + 1} entries, got ${values.length}.`,
    );
  }
  const q = clampProgress(p);
  let i = 0;
  while (i < boundaries.length && q >= boundaries[i]!) i++;
  return values[i]!;
}

/** The lambda of `schedule` at progress `p` (p is clamped to [0, 1]). */
export function lambdaAt(schedule: LambdaSchedule, p: number): number {
  validateSchedule(schedule);
  switch (schedule.kind) {
    case 'constant':
      return constantLambda(p, schedule.value);
    case 'dann':
      return dannLambda(p, schedule.alpha ?? schedule.gamma ?? 10, schedule.max ?? 1);
    case 'linear':
      return linearLambda(p, schedule.from, schedule.to);
    case 'step':
      return stepLambda(p, schedule.boundaries, schedule.values);
  }
}

/** Throws a GrlError naming the bad field when `schedule` is not a valid LambdaSchedule. */
export function validateSchedule(schedule: unknown): asserts schedule is LambdaSchedule {
  const bad = (field: string, what: string): never => {
    throw new GrlError('E_GRL_SCHEDULE', `lambda schedule: ${field} ${what}.`);
  };
  if (schedule === null || typeof schedule !== 'object') bad('schedule', `must be an object like {kind: 'dann'}, got ${String(schedule)}`);
  const s = schedule as Record<string, unknown>;
  const finite = (field: string, optional = false) => {
    const v = s[field];
    if (v === undefined && optional) return;
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(field, `must be a finite number, got ${String(v)}`);
  };
  switch (s.kind) {
    case 'constant':
      finite('value');
      return;
    case 'dann':
      finite('alpha', true);
      finite('gamma', true);
      finite('max', true);
      return;
    case 'linear':
      finite('from');
      finite('to');
      return;
    case 'step': {
      const { boundaries, values } = s;
      if (!Array.isArray(boundaries) || !boundaries.every((b) => typeof b === 'number' && Number.isFinite(b))) {
        bad('boundaries', 'must be an array of finite numbers');
      }
      if (!Array.isArray(values) || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        bad('values', 'must be an array of finite numbers');
      }
      const b = boundaries as number[];
      for (let i = 1; i < b.length; i++) if (b[i]! <= b[i - 1]!) bad('boundaries', `must be strictly ascending, got [${b.join(', ')}]`);
      if ((values as number[]).length !== b.length + 1) {
        bad('values', `must have boundaries.length + 1 = ${b.length + 1} entries, got ${(values as number[]).length}`);
      }
      return;
    }
    default:
      bad('kind', `must be 'constant', 'dann', 'linear' or 'step', got ${JSON.stringify(s.kind)}`);
  }
}

function clampProgress(p: number): number {
  if (typeof p !== 'number' || Number.isNaN(p)) {
    throw new GrlError('E_GRL_PROGRESS', `lambda schedule: progress p must be a number in [0, 1], got ${String(p)}.`);
  }
  // Callers compute p = step / totalSteps; a final step may overshoot by rounding.
  return Math.min(1, Math.max(0, p));
}
