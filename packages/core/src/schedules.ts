import { ConfigError } from './errors.js';

/**
 * The schedule vocabulary of dfd, written once: the names of the gamma (MI-loss weight, Eq. 10-11)
 * and GRL lambda schedules, their parameters, the rule each parameter follows and its default.
 * `@dfd/trainer`'s config schema is built from these tables, `@dfd/plugin-schedulers` implements
 * the formulas (an exhaustive switch over {@link GammaScheduleSpec} / {@link LambdaScheduleSpec}),
 * so a name or a parameter cannot exist in one place and not in the other.
 *
 * p below is training progress: optimizer steps done before the step / total steps, in [0, 1].
 */

/** What a schedule parameter may be. */
export type ScheduleParamRule = 'number' | 'nonNegative' | 'positive';

/** One parameter: its rule, and its default (absent: the parameter is required). */
export interface ScheduleParam {
  readonly rule: ScheduleParamRule;
  readonly default?: number;
  readonly doc: string;
}

/** Gamma (weight of L_MI) schedules by name. */
export const GAMMA_SCHEDULE_PARAMS = {
  /** Eq. 11: scale * (2 / (1 + exp(-alpha p)) - 1). */
  paper: {
    alpha: { rule: 'positive', default: 10, doc: 'slope of the sigmoid ramp (paper 10)' },
    scale: { rule: 'nonNegative', default: 1, doc: 'value the ramp tends to' },
  },
  constant: { value: { rule: 'nonNegative', doc: 'gamma at every step' } },
  linear: {
    start: { rule: 'nonNegative', default: 0, doc: 'gamma at p = 0' },
    end: { rule: 'nonNegative', default: 1, doc: 'gamma at p = 1' },
  },
} as const satisfies Record<string, Record<string, ScheduleParam>>;

/** GRL lambda schedules by name. */
export const LAMBDA_SCHEDULE_PARAMS = {
  /** The paper's: lambda = 1 throughout. */
  constant: { value: { rule: 'number', default: 1, doc: 'lambda at every step (paper 1)' } },
  /** DANN (Ganin & Lempitsky 2015): max * (2 / (1 + exp(-alpha p)) - 1). */
  dann: {
    alpha: { rule: 'positive', default: 10, doc: 'slope of the sigmoid ramp (DANN 10)' },
    max: { rule: 'number', default: 1, doc: 'value the ramp tends to' },
  },
  linear: {
    start: { rule: 'number', default: 0, doc: 'lambda at p = 0' },
    end: { rule: 'number', default: 1, doc: 'lambda at p = 1' },
  },
} as const satisfies Record<string, Record<string, ScheduleParam>>;

/** PyTorch CosineAnnealingLR's parameters (stepped once per epoch; the paper's T_max is 100). */
export const COSINE_LR_PARAMS = {
  tMax: { rule: 'positive', default: 100, doc: 'period in epochs (paper 100)' },
  etaMin: { rule: 'nonNegative', default: 0, doc: 'smallest learning rate' },
} as const satisfies Record<string, ScheduleParam>;

type RequiredParams<P> = { [K in keyof P as P[K] extends { default: number } ? never : K]: number };
type OptionalParams<P> = { [K in keyof P as P[K] extends { default: number } ? K : never]?: number };
type SpecOf<T> = { [N in keyof T]: { name: N } & RequiredParams<T[N]> & OptionalParams<T[N]> }[keyof T];
type Expand<T> = T extends infer O ? { [K in keyof O]: O[K] } : never;

/** A gamma schedule chosen by name, e.g. `{name: 'paper'}`, `{name: 'constant', value: 0.5}`. */
export type GammaScheduleSpec = Expand<SpecOf<typeof GAMMA_SCHEDULE_PARAMS>>;
/** A GRL lambda schedule chosen by name, e.g. `{name: 'constant', value: 1}`, `{name: 'dann'}`. */
export type LambdaScheduleSpec = Expand<SpecOf<typeof LAMBDA_SCHEDULE_PARAMS>>;
/** Cosine annealing of every group's learning rate, per epoch. */
export interface CosineLrSpec {
  tMax: number;
  etaMin: number;
}

/** Names of the gamma schedules. */
export const GAMMA_SCHEDULES = Object.keys(GAMMA_SCHEDULE_PARAMS) as Array<GammaScheduleSpec['name']>;
/** Names of the lambda schedules. */
export const LAMBDA_SCHEDULES = Object.keys(LAMBDA_SCHEDULE_PARAMS) as Array<LambdaScheduleSpec['name']>;

/** Whether `value` follows `rule`. */
export function followsRule(value: unknown, rule: ScheduleParamRule): value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return false;
  return rule === 'number' || (rule === 'nonNegative' ? value >= 0 : value > 0);
}

const RULE_TEXT: Record<ScheduleParamRule, string> = { number: 'a finite number', nonNegative: 'a number >= 0', positive: 'a number > 0' };

/**
 * Checks `spec` against a table ({@link GAMMA_SCHEDULE_PARAMS}, {@link LAMBDA_SCHEDULE_PARAMS})
 * and returns it with every default filled in; a bad name or parameter throws a ConfigError
 * naming `field` (e.g. `schedule.gamma.alpha`).
 */
export function resolveScheduleSpec<T extends Record<string, Record<string, ScheduleParam>>>(table: T, spec: unknown, field: string): { name: keyof T & string } & Record<string, number> {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new ConfigError(field, `must be an object like {name: '${Object.keys(table)[0]}'}, got ${JSON.stringify(spec)}.`);
  const { name, ...rest } = spec as { name?: unknown } & Record<string, unknown>;
  const params = typeof name === 'string' && Object.hasOwn(table, name) ? table[name]! : undefined;
  if (!params) throw new ConfigError(`${field}.name`, `unknown schedule ${JSON.stringify(name)}; use ${Object.keys(table).join(', ')}.`);
  const out: Record<string, number> = {};
  for (const key of Object.keys(rest)) {
    if (!Object.hasOwn(params, key)) throw new ConfigError(`${field}.${key}`, `schedule '${name}' has no parameter '${key}'; its parameters are ${Object.keys(params).join(', ') || '(none)'}.`);
  }
  for (const [key, p] of Object.entries(params)) {
    const v = rest[key];
    if (v === undefined) {
      if (p.default === undefined) throw new ConfigError(`${field}.${key}`, `schedule '${name}' needs ${key} (${p.doc}).`);
      out[key] = p.default;
    } else if (!followsRule(v, p.rule)) throw new ConfigError(`${field}.${key}`, `must be ${RULE_TEXT[p.rule]}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}.`);
    else out[key] = v;
  }
  return { name, ...out } as { name: keyof T & string } & Record<string, number>;
}

/** {@link resolveScheduleSpec} for gamma: every parameter present. */
export function resolveGammaSpec(spec: unknown, field = 'gamma'): GammaScheduleSpec {
  return resolveScheduleSpec(GAMMA_SCHEDULE_PARAMS, spec, field) as never;
}

/** {@link resolveScheduleSpec} for lambda: every parameter present. */
export function resolveLambdaSpec(spec: unknown, field = 'lambda'): LambdaScheduleSpec {
  return resolveScheduleSpec(LAMBDA_SCHEDULE_PARAMS, spec, field) as never;
}
