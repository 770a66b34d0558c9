import { resolveGammaSpec, resolveLambdaSpec, type GammaScheduleSpec, type LambdaScheduleSpec } from '@dfd/core';

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

/**
 * Build the gamma schedule named by `spec` (default: the paper's). Names, parameters and defaults
 * are @dfd/core's schedule vocabulary (`GAMMA_SCHEDULE_PARAMS`); a bad spec throws a ConfigError
 * naming the field.
 */
export function createGammaSchedule(spec: GammaScheduleSpec = { name: 'paper' }, field = 'gamma'): Schedule {
  const s = resolveGammaSpec(spec, field);
  switch (s.name) {
    case 'paper': {
      const { alpha, scale } = s as Required<typeof s>;
      return (p) => scale * paperGamma(p, alpha);
    }
    case 'constant': {
      const value = s.value;
      return () => value;
    }
    case 'linear': {
      const { start, end } = s as Required<typeof s>;
      return (p) => linearRamp(p, start, end);
    }
  }
}

/** Build the lambda schedule named by `spec` (default: constant 1, the paper's); vocabulary `LAMBDA_SCHEDULE_PARAMS`. */
export function createLambdaSchedule(spec: LambdaScheduleSpec = { name: 'constant' }, field = 'lambda'): Schedule {
  const s = resolveLambdaSpec(spec, field);
  switch (s.name) {
    case 'constant': {
      const { value } = s as Required<typeof s>;
      return () => value;
    }
    case 'dann': {
      const { alpha, max } = s as Required<typeof s>;
      return (p) => dannLambda(p, alpha, max);
    }
    case 'linear': {
      const { start, end } = s as Required<typeof s>;
      return (p) => linearRamp(p, start, end);
    }
  }
}

export { GAMMA_SCHEDULES, LAMBDA_SCHEDULES, type CosineLrSpec, type GammaScheduleSpec, type LambdaScheduleSpec } from '@dfd/core';
