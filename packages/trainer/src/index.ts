export { AdamW, type AdamWOptions, type AdamWParamState, type AdamWState, type ParamGroup } from './adamw.js';
export { CheckpointStore, readCheckpoint, type Checkpoint, type CheckpointMeta, type LoadedCheckpoint, type StoredTensor } from './checkpoint.js';
export { PAPER_LOOP_DEFAULTS, composeTrainer, type ComposeOptions } from './compose.js';
export { microBatches, sumMicroBatchGradients, type MicroBatch } from './micro-batch.js';
export { disposeBatch, tensorBatchSource, type ArraySamples, type Batch, type BatchSource, type TensorBatchSourceOptions } from './data.js';
export { CheckpointError, NonFiniteLossError, RunFolderError, TrainingFailedError, TrainingSetupError } from './errors.js';
export { SKIPPED_IMAGES_FILE, imageCheckCacheFile, screenImages, writeSkippedImages, type BadImagesMode } from './images.js';
export { LOCK_FILE, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, RUN_OUTPUTS, acquireRunLock, describeFsError, ensureWritableDir, pidAlive, prepareRunFolder, previousRunEntries, type RunLock, type RunLockInfo } from './run-folder.js';
export { evaluate, meanAccuracy, summarise, type Classifier } from './evaluate.js';
export { correctCount, crossEntropy, smoothL1 } from './losses.js';
export { DfdTask, EifeTask, defaultGroupOf, type DfdNetLike, type EifeLike, type StepContext, type TaskLoss, type TrainableModule, type TrainingTask } from './task.js';
export { TRAINER_TOKENS, type Optional } from './tokens.js';
export { Trainer, type LoopOptions, type TrainResult } from './trainer.js';
export { eifeConfigSchema, mergeConfig, readConfigFile, resolveLearningRates, trainConfigSchema, validateConfig, type EifeConfig, type EifeConfigInput, type TrainConfig, type TrainConfigInput } from './config.js';
export { loaderBatchSource, type StatefulLoader } from './data.js';
export { confusionSvg, lineChartSvg, resultsTable, writeRunReport, type RunReport } from './report.js';
export {
  createDefaultPluginRegistry,
  createEifeTrainer,
  createTrainer,
  defaultDatasetRegistry,
  evalSource,
  evaluateModelDir,
  evaluateTargets,
  loadPretrainedBackbone,
  modelDirOf,
  readRunConfig,
  type ComposedRun,
  type DfdRunResult,
  type EifeRunResult,
  type EvaluateModelDirOptions,
  type RunOptions,
} from './run.js';
export { DEMO_SETTINGS, runDemo, type DemoOptions, type DemoResult } from './demo.js';
export { applyZooBackbone, evaluateBaselines, evaluateZooModel, loadExtractors, loadZooBackbone, type BaselineResult } from './zoo.js';
