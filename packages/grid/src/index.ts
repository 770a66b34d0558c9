export { canonicalJson, cellLabel, configHash, expandGrid, gridFileSchema, loadGrid, readGridFile, setPath, type EifeJob, type GridCell, type GridFile, type GridPlan } from './spec.js';
export { CELL_FILE, FAILED_FILE, GRID_FILE, cellProgress, clearFailed, formatDuration, formatStatus, gridProgress, hasCheckpoint, isDone, prepareGrid, readCellSpec, readFailed, readGridIndex, readMetrics, summariseProgress, writeFailed, type CellProgress, type CellSpec, type CellState, type GridIndex } from './store.js';
export { summarise, tQuantile975, type Summary } from './stats.js';
export { SEED_AXIS, gridReport, reportMarkdown, reportSvg, writeGridReport, type CellOutcome, type GridReport, type GroupSummary, type PairedDifference } from './report.js';
export { CellFailedError, STOPPED_EXIT, childExecutor, defaultCliCommand, runCellInProcess, runGridLocal, type CellEnd, type CellExecutor, type LocalRunOptions, type LocalRunSummary } from './run.js';
export { DEFAULT_QUEUE, connect, enqueueGrid, queueCounts, startWorker, takeOverForeignLock, type EnqueueSummary, type GridJobData, type GridWorker, type QueueTarget, type WorkerOptions } from './queue.js';
