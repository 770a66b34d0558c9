import { COSINE_LR_PARAMS, ConfigError, followsRule, type CosineLrSpec, type DfdPlugin, type PluginContext, type PluginRegistry, type StepHookContext } from '@dfd/core';
import { cosineAnnealingLr, createGammaSchedule, createLambdaSchedule, type GammaScheduleSpec, type LambdaScheduleSpec, type Schedule } from './schedules.js';

/** Name of the plugin that sets gamma; a plugin of yours with this name replaces it (`mergePlugins`). */
export const GAMMA_SCHEDULER = 'gamma-scheduler';
/** Name of the plugin that sets the GRL lambda. */
export const LAMBDA_SCHEDULER = 'lambda-scheduler';
/** Name of the plugin that sets the learning rates (cosine annealing). */
export const LR_SCHEDULER = 'lr-scheduler';

/** Sets `controls.gamma` (the MI-loss weight, Eq. 10) before every step to the schedule at p (Eq. 11 for `paper`). */
export class GammaSchedulerPlugin implements DfdPlugin {
  readonly name: string;
  private readonly schedule: Schedule;

  constructor(
    readonly spec: GammaScheduleSpec,
    name = GAMMA_SCHEDULER,
  ) {
    this.name = name;
    this.schedule = createGammaSchedule(spec, 'schedule.gamma');
  }

  setup(): void {}

  beforeStep(ctx: StepHookContext): void {
    ctx.controls.gamma = this.schedule(ctx.p);
  }
}

/** Sets `controls.lambda` (the GRL coefficient, Eq. 9) before every step to the schedule at p. */
export class LambdaSchedulerPlugin implements DfdPlugin {
  readonly name: string;
  private readonly schedule: Schedule;

  constructor(
    readonly spec: LambdaScheduleSpec,
    name = LAMBDA_SCHEDULER,
  ) {
    this.name = name;
    this.schedule = createLambdaSchedule(spec, 'schedule.lambda');
  }

  setup(): void {}

  beforeStep(ctx: StepHookContext): void {
    ctx.controls.lambda = this.schedule(ctx.p);
  }
}

/**
 * PyTorch CosineAnnealingLR stepped once per epoch: before every step of epoch t (0-based) each
 * group's rate is `cosineAnnealingLr(t, base, tMax, etaMin)` (the paper: T_max 100).
 */
export class CosineLrPlugin implements DfdPlugin {
  readonly name: string;

  constructor(
    readonly spec: CosineLrSpec,
    name = LR_SCHEDULER,
  ) {
    this.name = name;
    for (const [key, p] of Object.entries(COSINE_LR_PARAMS)) {
      if (!followsRule(spec[key as keyof CosineLrSpec], p.rule)) throw new ConfigError(`schedule.cosine.${key}`, `must be a number ${p.rule === 'positive' ? '> 0' : '>= 0'}, got ${JSON.stringify(spec[key as keyof CosineLrSpec])}.`);
    }
  }

  setup(): void {}

  beforeStep(ctx: StepHookContext): void {
    for (const [group, base] of Object.entries(ctx.baseLearningRates)) ctx.controls.learningRates[group] = cosineAnnealingLr(ctx.epoch, base, this.spec.tMax, this.spec.etaMin);
  }
}

/** A run config's `schedule` section (validated: every default filled in); stage 1 has only `cosine`. */
export interface ScheduleConfig {
  cosine: CosineLrSpec | false | null;
  gamma?: GammaScheduleSpec;
  lambda?: LambdaScheduleSpec;
}

/**
 * The scheduler plugins of a config's `schedule` section: `lr-scheduler` (cosine; none when
 * `cosine` is false: constant rates), `gamma-scheduler` and `lambda-scheduler` (when given).
 */
export function schedulerPlugins(schedule: ScheduleConfig): DfdPlugin[] {
  return [
    ...(schedule.cosine ? [new CosineLrPlugin(schedule.cosine)] : []),
    ...(schedule.gamma ? [new GammaSchedulerPlugin(schedule.gamma)] : []),
    ...(schedule.lambda ? [new LambdaSchedulerPlugin(schedule.lambda)] : []),
  ];
}

/** Options of {@link ScheduleMonitorPlugin}. */
export interface ScheduleMonitorOptions {
  gamma?: GammaScheduleSpec;
  lambda?: LambdaScheduleSpec;
  /** Largest tolerated |reported - expected| before a warning (default 1e-6). */
  tolerance?: number;
}

/**
 * Checks, from the bus alone, that the gamma and lambda the trainer reports in `batchEnd` follow
 * the given schedules at the step's progress `p` (optimizer steps done before the step / total
 * steps: `batchEnd.p`); a mismatch becomes a `warning` event. Useful when a custom scheduler, a
 * custom trainer or a resumed run must be shown to keep the schedule.
 */
export class ScheduleMonitorPlugin implements DfdPlugin<{ mismatches: number }> {
  readonly name = 'schedule-monitor';
  private mismatches = 0;
  private readonly gamma;
  private readonly lambda;
  private readonly tolerance: number;

  constructor(options: ScheduleMonitorOptions = {}) {
    this.gamma = createGammaSchedule(options.gamma);
    this.lambda = createLambdaSchedule(options.lambda);
    this.tolerance = options.tolerance ?? 1e-6;
  }

  /** Subscribes to `batchEnd`. */
  setup(context: PluginContext): void {
    context.on('batchEnd', (e) => {
      const p = e.p;
      const checks: Array<[string, number | undefined, number]> = [
        ['gamma', e.gamma, this.gamma(p)],
        ['lambda', e.lambda, this.lambda(p)],
      ];
      for (const [what, got, want] of checks) {
        if (got === undefined || Math.abs(got - want) <= this.tolerance) continue;
        this.mismatches++;
        context.bus.emit({ type: 'warning', source: this.name, message: `${what} at step ${e.globalStep} is ${got}, the schedule gives ${want}`, detail: { what, got, want, p } });
      }
    });
  }

  /** Number of mismatches seen so far. */
  get mismatchCount(): number {
    return this.mismatches;
  }

  /** Mismatch count, kept across resume. */
  getState(): { mismatches: number } {
    return { mismatches: this.mismatches };
  }

  /** Restore {@link getState}. */
  setState(state: { mismatches: number }): void {
    this.mismatches = state.mismatches;
  }
}

/** Register `schedule-monitor`, `gamma-scheduler`, `lambda-scheduler` and `lr-scheduler` (cosine) in a plugin registry. */
export function registerSchedulers(registry: PluginRegistry): PluginRegistry {
  return registry
    .register<ScheduleMonitorOptions>('schedule-monitor', (o) => new ScheduleMonitorPlugin(o ?? {}), 'warn when reported gamma/lambda leave their schedule')
    .register<GammaScheduleSpec>(GAMMA_SCHEDULER, (o) => new GammaSchedulerPlugin(o), 'set gamma (the MI-loss weight) before every step: {name: paper|constant|linear, ...}')
    .register<LambdaScheduleSpec>(LAMBDA_SCHEDULER, (o) => new LambdaSchedulerPlugin(o), 'set the GRL lambda before every step: {name: constant|dann|linear, ...}')
    .register<CosineLrSpec>(LR_SCHEDULER, (o) => new CosineLrPlugin(o), 'cosine-anneal every learning rate per epoch: {tMax, etaMin}');
}
