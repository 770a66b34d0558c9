import 'reflect-metadata';
import { createContainer, TOKENS, type DependencyContainer, type DfdPlugin, type PluginRegistry } from '@dfd/core';
import type { CheckpointStore } from './checkpoint-store.js';
import { PAPER_OPTIMIZER, resolveLearningRates } from './config.js';
import type { BatchSource } from './data.js';
import type { TrainingTask } from './task.js';
import { TRAINER_TOKENS } from './tokens.js';
import { Trainer, type LoopOptions } from './trainer.js';

/** What {@link composeTrainer} wires together. */
export interface ComposeOptions {
  task: TrainingTask;
  data: BatchSource;
  validation?: BatchSource | null;
  /** Loop options; missing numbers take the paper recipe's defaults. */
  options: Partial<LoopOptions> & { epochs: number };
  /**
   * Where checkpoints go (omit for none: no checkpoints, no resume). In Node,
   * `new FsCheckpointStore(runDir, keep)` from `@dfd/trainer/node`; anywhere, a `MemoryCheckpointStore`.
   */
  checkpoints?: CheckpointStore | null;
  plugins?: DfdPlugin[];
  seed?: number;
  pluginRegistry?: PluginRegistry;
  /** Parent container (default tsyringe's root). */
  parent?: DependencyContainer;
}

/**
 * The paper's optimizer recipe (METHOD.md), used for every number not given: the defaults of the
 * config schema's `optimizer` section (`PAPER_OPTIMIZER`), with the pretrained backbone's rate.
 * The schedules (cosine, gamma, lambda) are plugins, not loop options: see `@dfd/plugin-schedulers`.
 */
export const PAPER_LOOP_DEFAULTS: Pick<LoopOptions, 'lr' | 'weightDecay' | 'beta1' | 'beta2' | 'eps'> = {
  lr: resolveLearningRates(PAPER_OPTIMIZER, true),
  weightDecay: PAPER_OPTIMIZER.weightDecay,
  beta1: PAPER_OPTIMIZER.beta1,
  beta2: PAPER_OPTIMIZER.beta2,
  eps: PAPER_OPTIMIZER.eps,
};

/**
 * The composition root of a run: a child container from @dfd/core's createContainer holding the
 * bus, RNG, plugin host and the trainer's collaborators, from which the {@link Trainer} is
 * resolved (constructor injection). Returns the trainer and its container.
 */
export function composeTrainer(c: ComposeOptions): { trainer: Trainer; container: DependencyContainer } {
  const options: LoopOptions = {
    ...PAPER_LOOP_DEFAULTS,
    runId: c.options.runId ?? `run-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    config: c.options.config ?? {},
    resume: c.options.resume ?? false,
    ...c.options,
  } as LoopOptions;
  const container = createContainer({ config: options.config, seed: c.seed ?? 0, pluginRegistry: c.pluginRegistry, parent: c.parent });
  container.register(TRAINER_TOKENS.Task, { useValue: c.task });
  container.register(TRAINER_TOKENS.TrainData, { useValue: c.data });
  container.register(TRAINER_TOKENS.ValidationData, { useValue: { value: c.validation ?? null } });
  container.register(TRAINER_TOKENS.LoopOptions, { useValue: options });
  container.register(TRAINER_TOKENS.CheckpointStore, { useValue: { value: c.checkpoints ?? null } });
  const host = container.resolve(TOKENS.PluginHost);
  for (const p of c.plugins ?? []) host.use(p);
  const trainer = container.resolve(Trainer);
  return { trainer, container };
}
