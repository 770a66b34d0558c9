import { ConfigError, type DfdPlugin, type PluginContext, type PluginRegistry } from '@dfd/core';

/** Options of {@link EarlyStoppingPlugin}, after Keras' `EarlyStopping`. */
export interface EarlyStoppingOptions {
  /** Key of `epochEnd.metrics` (or of an `evaluation` on the source validation split: `val_accuracy`). Default `loss`. */
  monitor?: string;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Epochs without improvement before stopping (default 0: stop at the first non-improving epoch). */
  patience?: number;
  /** `min`, `max`, or `auto` (max for names containing `acc`, else min). Default `auto`. */
  mode?: 'min' | 'max' | 'auto';
  /** The monitored value must beat this to count as an improvement at all. */
  baseline?: number;
  /**
   * Stop when the monitored value of an epoch is NaN or infinite (default true). A non-finite
   * batch loss needs no plugin: the trainer itself fails the run at that step, before `batchEnd`.
   */
  stopOnNonFinite?: boolean;
}

/** Saved across resume so that patience counts continue. */
export interface EarlyStoppingState {
  best: number | null;
  wait: number;
  stoppedEpoch: number | null;
}

/**
 * Stops training when the monitored metric has not improved by `minDelta` for `patience`
 * epochs, or at once when it is not finite (e.g. a loss part a custom task reports outside the
 * total). Asks the trainer to stop through `context.requestStop`; never touches the trainer.
 */
export class EarlyStoppingPlugin implements DfdPlugin<EarlyStoppingState> {
  readonly name: string;
  readonly monitor: string;
  readonly mode: 'min' | 'max';
  private readonly minDelta: number;
  private readonly patience: number;
  private readonly baseline: number | undefined;
  private readonly stopOnNonFinite: boolean;
  private best: number | null = null;
  private wait = 0;
  private stoppedEpoch: number | null = null;

  constructor(options: EarlyStoppingOptions = {}, name = 'early-stopping') {
    this.name = name;
    this.monitor = options.monitor ?? 'loss';
    const mode = options.mode ?? 'auto';
    if (!['min', 'max', 'auto'].includes(mode)) throw new ConfigError('earlyStopping.mode', `must be min, max or auto, got '${mode}'`);
    this.mode = mode === 'auto' ? (/acc/i.test(this.monitor) ? 'max' : 'min') : mode;
    this.minDelta = Math.abs(options.minDelta ?? 0);
    this.patience = options.patience ?? 0;
    if (!Number.isInteger(this.patience) || this.patience < 0) throw new ConfigError('earlyStopping.patience', `must be a non-negative integer, got ${options.patience}`);
    this.baseline = options.baseline;
    this.stopOnNonFinite = options.stopOnNonFinite ?? true;
  }

  /** Watches `epochEnd` (its metrics include `val_accuracy` with selection source-val). */
  setup(context: PluginContext): void {
    context.on('epochEnd', (e) => {
      const value = e.metrics[this.monitor];
      if (value !== undefined) this.observe(e.epoch, value, context);
    });
  }

  /** Feed one epoch's value; returns true when the run should stop. Exposed for tests and custom loops. */
  observe(epoch: number, value: number, context?: Pick<PluginContext, 'requestStop'>): boolean {
    if (!Number.isFinite(value)) {
      if (!this.stopOnNonFinite) return false;
      this.stoppedEpoch = epoch;
      context?.requestStop(`${this.name}: ${this.monitor} is ${value} at epoch ${epoch}`);
      return true;
    }
    const reference = this.best ?? this.baseline;
    if (reference === undefined || this.isBetter(value, reference)) {
      this.best = value;
      this.wait = 0;
      return false;
    }
    this.wait++;
    if (this.wait > this.patience) {
      this.stoppedEpoch = epoch;
      const bestText = this.best === null ? `baseline ${this.baseline}` : `best ${this.best}`;
      context?.requestStop(`${this.name}: ${this.monitor} did not improve by ${this.minDelta} for ${this.wait} epoch(s) (${bestText}, last ${value})`);
      return true;
    }
    return false;
  }

  private isBetter(value: number, reference: number): boolean {
    return this.mode === 'min' ? value < reference - this.minDelta : value > reference + this.minDelta;
  }

  /** Best value, patience counter and stop epoch. */
  getState(): EarlyStoppingState {
    return { best: this.best, wait: this.wait, stoppedEpoch: this.stoppedEpoch };
  }

  /** Restore {@link getState}. */
  setState(state: EarlyStoppingState): void {
    this.best = state.best;
    this.wait = state.wait;
    this.stoppedEpoch = state.stoppedEpoch;
  }
}

/** Register `early-stopping` in a plugin registry. */
export function registerEarlyStopping(registry: PluginRegistry): PluginRegistry {
  return registry.register<EarlyStoppingOptions>('early-stopping', (o) => new EarlyStoppingPlugin(o ?? {}), 'stop when a metric stops improving or the loss is non-finite');
}
