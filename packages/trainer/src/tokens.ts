import type { InjectionToken } from 'tsyringe';
import type { BatchSource } from './data.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { TrainingTask } from './task.js';
import type { LoopOptions } from './trainer.js';

/** A registration that may be empty (tsyringe cannot register a bare null). */
export interface Optional<T> {
  value: T | null;
}

/** Injection tokens of the trainer's collaborators (registered by {@link createTrainer} or by hand). */
export const TRAINER_TOKENS = {
  /** The stage being trained: model + loss. */
  Task: Symbol.for('dfd.trainer.Task') as InjectionToken<TrainingTask>,
  /** Training batches. */
  TrainData: Symbol.for('dfd.trainer.TrainData') as InjectionToken<BatchSource>,
  /** Optional source validation batches (model selection never uses targets): `{value: null}` for none. */
  ValidationData: Symbol.for('dfd.trainer.ValidationData') as InjectionToken<Optional<BatchSource>>,
  /** Resolved loop options (epochs, rates, schedules). */
  LoopOptions: Symbol.for('dfd.trainer.LoopOptions') as InjectionToken<LoopOptions>,
  /** Where checkpoints go: `{value: null}` for none. */
  CheckpointStore: Symbol.for('dfd.trainer.CheckpointStore') as InjectionToken<Optional<CheckpointStore>>,
} as const;
