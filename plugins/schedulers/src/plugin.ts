import type { DfdPlugin, PluginContext, PluginRegistry } from '@dfd/core';
import { createGammaSchedule, createLambdaSchedule, type GammaScheduleSpec, type LambdaScheduleSpec } from './schedules.js';

/** Options of {@link ScheduleMonitorPlugin}. */
export interface ScheduleMonitorOptions {
  gamma?: GammaScheduleSpec;
  lambda?: LambdaScheduleSpec;
  /** Largest tolerated |reported - expected| before a warning (default 1e-6). */
  tolerance?: number;
}

/**
 * Checks, from the bus alone, that the gamma and lambda the trainer reports in `batchEnd` follow
 * the configured schedules at p = globalStep / totalSteps; a mismatch becomes a `warning` event.
 * Useful when a custom trainer or a resumed run must be shown to keep the schedule.
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
      const p = e.globalStep / e.totalSteps;
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

/** Register `schedule-monitor` in a plugin registry. */
export function registerSchedulers(registry: PluginRegistry): PluginRegistry {
  return registry.register<ScheduleMonitorOptions>('schedule-monitor', (o) => new ScheduleMonitorPlugin(o ?? {}), 'warn when reported gamma/lambda leave their schedule');
}
