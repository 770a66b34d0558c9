// The Node entry of @dfd/trainer (`@dfd/trainer/node`): what needs the file system, sharp or
// Node's process model. File checkpoints (FsCheckpointStore), config files, run folders and their
// lock, image screening, reports (SVG/PNG charts through sharp), the run helpers the CLI uses
// (createTrainer, createEifeTrainer, evaluateModelDir), the demo and zoo loading. Importing it
// registers the Node image decoder (sharp, through @dfd/datasets/node). The loop itself, tasks,
// AdamW, evaluation and the CheckpointStore interface are the browser-safe main entry, `@dfd/trainer`.
export { FsCheckpointStore, readCheckpoint } from './checkpoint.js';
export { readConfigFile } from './config-file.js';
export { SKIPPED_IMAGES_FILE, imageCheckCacheFile, screenImages, writeSkippedImages, type BadImagesMode } from './images.js';
export { LOCK_FILE, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, RUN_OUTPUTS, acquireRunLock, describeFsError, ensureWritableDir, pidAlive, prepareRunFolder, previousRunEntries, type RunLock, type RunLockInfo } from './run-folder.js';
export { confusionSvg, lineChartSvg, resultsTable, writeRunReport, type RunReport } from './report.js';
export {
  createEifeTrainer,
  createTrainer,
  defaultDatasetRegistry,
  evalSource,
  evaluateModelDir,
  evaluateTargets,
  loadPretrainedBackbone,
  loopOptionsFrom,
  modelDirOf,
  readRunConfig,
  type ComposedRun,
  type DfdRunResult,
  type EifeRunResult,
  type EvaluateModelDirOptions,
  type RunOptions,
  type RunPlugins,
} from './run.js';
export { DEMO_SETTINGS, runDemo, type DemoOptions, type DemoResult } from './demo.js';
export { applyZooBackbone, evaluateBaselines, evaluateZooModel, loadExtractors, loadZooBackbone, nativeZooTransform, type BaselineResult, type ZooPreprocess } from './zoo.js';
