import 'reflect-metadata';
import { createContainer, TOKENS, type DependencyContainer, type DfdPlugin, type PluginRegistry } from '@dfd/core';
import type { CheckpointStore } from './checkpoint-store.js';
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

/** The paper's recipe (METHOD.md), used for every number not given. */
export const PAPER_LOOP_DEFAULTS: Omit<LoopOptions, 'epochs' | 'runId' | 'config' | 'resume'> = {
  lr: { backbone: 1e-6, heads: 5e-4 },
  weightDecay: 0.01,
  beta1: 0.5,
  beta2: 0.999,
  eps: 1e-8,
  cosine: { tMax: 100, etaMin: 0 },
  gamma: { name: 'paper' },
  lambda: { name: 'constant', value: 1 },
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
