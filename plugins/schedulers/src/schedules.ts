import { ConfigError } from '@dfd/core';

/** A schedule maps training progress p in [0, 1] (optimizer steps done / total steps) to a value. */
export type Schedule = (p: number) => number;

/** Paper Eq. 11: gamma(p) = 2 / (1 + exp(-alpha p)) - 1 with alpha = 10 (the DANN ramp). */
export function paperGamma(p: number, alpha = 10): number {
  return 2 / (1 + Math.exp(-alpha * p)) - 1;
}

/** DANN's GRL ramp: lambda(p) = max * (2 / (1 + exp(-alpha p)) - 1). */
export function dannLambda(p: number, alpha = 10, max = 1): number {
  return max * paperGamma(p, alpha);
}

/** Linear ramp from `start` at p = 0 to `end` at p = 1 (clamped outside). */
export function linearRamp(p: number, start: number, end: number): number {
  const q = Math.min(1, Math.max(0, p));
  return start + (end - start) * q;
}

/**
 * PyTorch CosineAnnealingLR, closed form: eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2,
 * where t is the number of scheduler steps taken (epochs). Past T_max the cosine continues, as
 * PyTorch's closed form does.
 */
export function cosineAnnealingLr(t: number, base: number, tMax: number, etaMin = 0): number {
  return etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2;
}

/** A gamma (MI loss weight) schedule chosen by name in a config. */
export type GammaScheduleSpec =
  | { name: 'paper'; alpha?: number; scale?: number }
  | { name: 'constant'; value: number }
  | { name: 'linear'; start?: number; end?: number };

/** A GRL lambda schedule chosen by name in a config. */
export type LambdaScheduleSpec =
  | { name: 'constant'; value?: number }
  | { name: 'dann'; alpha?: number; max?: number }
  | { name: 'linear'; start?: number; end?: number };

/** Build the gamma schedule named by `spec` (default: the paper's). */
export function createGammaSchedule(spec: GammaScheduleSpec = { name: 'paper' }): Schedule {
  switch (spec.name) {
    case 'paper': {
      const alpha = spec.alpha ?? 10;
      const scale = spec.scale ?? 1;
      return (p) => scale * paperGamma(p, alpha);
    }
    case 'constant': {
      const value = spec.value;
      return () => value;
    }
    case 'linear': {
      const start = spec.start ?? 0;
      const end = spec.end ?? 1;
      return (p) => linearRamp(p, start, end);
    }
    default:
      throw new ConfigError('gamma.name', `unknown gamma schedule '${(spec as { name: string }).name}'; use paper, constant or linear.`);
  }
}

/** Build the lambda schedule named by `spec` (default: constant 1, the paper's). */
export function createLambdaSchedule(spec: LambdaScheduleSpec = { name: 'constant' }): Schedule {
  switch (spec.name) {
    case 'constant': {
      const value = spec.value ?? 1;
      return () => value;
    }
    case 'dann': {
      const alpha = spec.alpha ?? 10;
      const max = spec.max ?? 1;
      return (p) => dannLambda(p, alpha, max);
    }
    case 'linear': {
      const start = spec.start ?? 0;
      const end = spec.end ?? 1;
      return (p) => linearRamp(p, start, end);
    }
    default:
      throw new ConfigError('lambda.name', `unknown lambda schedule '${(spec as { name: string }).name}'; use constant, dann or linear.`);
  }
}

/** Names accepted by {@link createGammaSchedule}. */
export const GAMMA_SCHEDULES = ['paper', 'constant', 'linear'] as const;
/** Names accepted by {@link createLambdaSchedule}. */
export const LAMBDA_SCHEDULES = ['constant', 'dann', 'linear'] as const;
