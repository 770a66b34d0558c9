// The browser-safe entry of @dfd/trainer: the loop, tasks, composition, AdamW, evaluation, batch
// sources, config schemas and the CheckpointStore interface. Nothing here imports `node:`, sharp
// or the file system (entry.test.ts bundles it for the browser to prove it); the Node parts (file
// checkpoints, run folders, reports, createTrainer, the demo, zoo loading) are `@dfd/trainer/node`.
export { AdamW, type AdamWCheckpointMeta, type AdamWOptions, type AdamWParamState, type AdamWState, type ParamGroup } from './adamw.js';
export { MemoryCheckpointStore, checkpointName, type Checkpoint, type CheckpointMeta, type CheckpointSaveMeta, type CheckpointStore, type LoadedCheckpoint, type StoredTensor } from './checkpoint-store.js';
export { PAPER_LOOP_DEFAULTS, composeTrainer, type ComposeOptions } from './compose.js';
export { microBatches, sumMicroBatchGradients, type MicroBatch } from './micro-batch.js';
export { disposeBatch, tensorBatchSource, type ArraySamples, type Batch, type BatchSource, type TensorBatchSourceOptions } from './data.js';
export { CheckpointError, EvaluationFailedError, NonFiniteLossError, RunFolderError, TrainingFailedError, TrainingSetupError } from './errors.js';
export { evaluate, evaluateHeads, meanAccuracy, summarise, type Classifier, type EvaluationHead } from './evaluate.js';
export { correctCount, crossEntropy, smoothL1 } from './losses.js';
export { measureEmbeddingStats, StandardizedEife, standardizeExtractors, statsSample, STD_FLOOR, type EmbeddingStats } from './eife-standardize.js';
export { DfdTask, EifeTask, defaultGroupOf, type DfdTaskOptions, type DfdNetLike, type EifeLike, type StepContext, type TaskLoss, type TrainableModule, type TrainingTask } from './task.js';
export { TRUNK_CACHE_MAX_BYTES, TrunkCache, fromHalf, toHalf, viewHash, type TrunkCacheOptions, type TrunkCachePrecision } from './trunk-cache.js';
export { TRAINER_TOKENS, type Optional } from './tokens.js';
export { Trainer, type LoopOptions, type StepOutcome, type TrainResult } from './trainer.js';
export { eifeConfigSchema, mergeConfig, parseConfigText, resolveLearningRates, trainConfigSchema, validateConfig, type EifeConfig, type EifeConfigInput, type TrainConfig, type TrainConfigInput } from './config.js';
export { loaderBatchSource, type StatefulLoader } from './data.js';
