import { spawn, type ChildProcess } from 'node:child_process';
import { DfdError } from '@dfd/core';
import { mkdirSync } from 'node:fs';
import { acquireRunLock, createEifeTrainer, createTrainer, type RunOptions } from '@dfd/trainer/node';
import type { GridPlan } from './spec.js';
import { clearFailed, hasCheckpoint, isDone, prepareGrid, readCellSpec, readFailed, writeFailed } from './store.js';

/** How one cell attempt ended (a failure is thrown). */
export type CellEnd = 'completed' | 'skipped' | 'stopped';

/** Runs one cell folder to its end: trains from scratch, or resumes from its latest checkpoint. */
export type CellExecutor = (dir: string) => Promise<CellEnd>;

/** A cell whose training ended as `failed` (non-finite loss...). */
export class CellFailedError extends DfdError {
  constructor(message: string) {
    super('E_GRID_CELL_FAILED', message);
  }
}

/** A grid run or report whose outcome is not a full grid: cells failed, or their reports are invalid (exit 1). */
export class GridIncompleteError extends DfdError {
  constructor(message: string) {
    super('E_GRID_INCOMPLETE', message);
  }
}

/**
 * Run one cell in this process (the tfjs backend must already be set). A folder with a finished
 * run is skipped; a folder with a checkpoint resumes from it (`dfd train --resume`), so a cell
 * killed mid-run continues where its last checkpoint left it; a folder without one starts over. `onStart` receives the trainer's
 * `requestStop` (Ctrl-C). `options.plugins` are the cell's plugins (the trainer imports none): the CLI passes
 * `(config) => createDefaultPlugins(config)` from `@dfd/cli/plugins`, so the cell gets the scheduler plugins of its config.
 */
export async function runCellInProcess(dir: string, options: RunOptions & { onStart?: (stop: (reason: string) => void) => void } = {}): Promise<CellEnd> {
  if (isDone(dir)) return 'skipped';
  const spec = readCellSpec(dir);
  const resume = hasCheckpoint(dir);
  const { onStart, ...runOptions } = options;
  // Without a checkpoint there is nothing to continue: what an attempt killed before its first
  // checkpoint left (config.json, metrics.jsonl) is replaced.
  const options2 = { ...runOptions, resume, overwrite: !resume };
  const composed = spec.kind === 'eife' ? await createEifeTrainer(spec.config as never, options2) : await createTrainer(spec.config as never, options2);
  onStart?.((r) => composed.trainer.requestStop(r));
  const { result } = await composed.run();
  if (result.status === 'failed') throw new CellFailedError(`training failed: ${result.reason ?? 'unknown reason'}`);
  return result.status === 'stopped' ? 'stopped' : 'completed';
}

/** The command line that starts this same `dfd` (Node, its flags, the script): children run `... grid cell DIR`. */
export function defaultCliCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** Exit code of `dfd grid cell` when the run was stopped (Ctrl-C) with a checkpoint written. */
export const STOPPED_EXIT = 3;

/**
 * An executor that runs each cell in a child process (`dfd grid cell DIR`, on the cell's own
 * backend unless `backend` is given). The child
 * watches its stdin: when this process dies (even by SIGKILL) the pipe closes and the child exits
 * at once, so a killed worker leaves no orphan writing into the cell. The error of a failed child
 * is the tail of its stderr.
 */
export function childExecutor(options: { backend?: string; cli?: string[]; cwd?: string; onSpawn?: (dir: string, child: ChildProcess) => void; env?: NodeJS.ProcessEnv }): CellExecutor {
  const cli = options.cli ?? defaultCliCommand();
  return (dir) =>
    new Promise<CellEnd>((resolvePromise, reject) => {
      const child = spawn(cli[0]!, [...cli.slice(1), 'grid', 'cell', dir, ...(options.backend ? ['--backend', options.backend] : []), '--parent-pipe'], { cwd: options.cwd, stdio: ['pipe', 'ignore', 'pipe'], env: options.env ?? process.env });
      let stderr = '';
      child.stderr!.on('data', (d) => {
        stderr = (stderr + String(d)).slice(-8000);
      });
      options.onSpawn?.(dir, child);
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (code === 0) resolvePromise('completed');
        else if (code === STOPPED_EXIT) resolvePromise('stopped');
        else {
          const lines = stderr.split('\n').filter((l) => l.trim() && !/^dfd: tfjs backend /.test(l));
          const dfdLines = lines.filter((l) => l.startsWith('dfd: '));
          // Without dfd's own message (a crash before the CLI's error handling): the error line, not the stack.
          const errorAt = lines.findIndex((l) => /^\s*\w*(Error|Exception)\b/.test(l));
          const picked = dfdLines.length ? dfdLines.slice(-3) : errorAt >= 0 ? lines.slice(Math.max(0, errorAt - 1), errorAt + 1) : lines.slice(-5);
          const message = picked.join('\n').replace(/^dfd: /gm, '') || `exit ${signal ?? code}`;
          reject(new DfdError('E_GRID_CELL_FAILED', message));
        }
      });
    });
}

/** Options of {@link runGridLocal}. */
export interface LocalRunOptions {
  /** Runs one cell (in process: {@link runCellInProcess}; `--jobs N`: {@link childExecutor}). */
  execute: CellExecutor;
  /** Cells at once (1 for the in-process executor). */
  jobs?: number;
  /** Attempts per cell before it is recorded as failed (default 2). */
  attempts?: number;
  /** Asked before each new cell; true stops starting cells (Ctrl-C). */
  stopping?: () => boolean;
  /** Told when a stale grid-folder lock (its holder is gone) is taken over. */
  onWarning?: (message: string) => void;
  /** Called when a cell starts, ends or fails (progress display). */
  onEvent?: (e: { type: 'start' | 'end' | 'retry' | 'failed'; dir: string; label: string; end?: CellEnd; error?: string; attempt?: number }) => void;
}

/** What a local grid run did. */
export interface LocalRunSummary {
  completed: number;
  skipped: number;
  failed: number;
  stopped: number;
}

/**
 * Run a grid on this machine: the stage-1 jobs first, then the cells, `jobs` at a time. Finished
 * cells are skipped (a re-run or an extended grid never trains a cell twice); a cell that fails
 * `attempts` times gets a failed.json with its error and the rest of the grid goes on; cells
 * whose stage-1 extractor failed fail with that error. The grid folder is locked (`run.lock`, as
 * a run folder is) for the whole run: a second run on it is a RunFolderError naming the holder.
 */
export async function runGridLocal(plan: GridPlan, options: LocalRunOptions): Promise<LocalRunSummary> {
  // One grid run per grid folder: a second one would retry the first one's running cells, find
  // their run folders locked, and record them as failed. The trainer's run.lock, on the grid folder.
  mkdirSync(plan.dir, { recursive: true });
  const lock = acquireRunLock(plan.dir, { onWarning: options.onWarning });
  try {
    return await runGridLocked(plan, options);
  } finally {
    lock.release();
  }
}

async function runGridLocked(plan: GridPlan, options: LocalRunOptions): Promise<LocalRunSummary> {
  prepareGrid(plan);
  const attempts = Math.max(1, options.attempts ?? 2);
  const summary: LocalRunSummary = { completed: 0, skipped: 0, failed: 0, stopped: 0 };
  const runOne = async (c: { dir: string; label: string }) => {
    if (isDone(c.dir)) {
      summary.skipped++;
      return;
    }
    clearFailed(c.dir);
    for (let attempt = 1; ; attempt++) {
      options.onEvent?.({ type: 'start', dir: c.dir, label: c.label, attempt });
      try {
        const end = await options.execute(c.dir);
        if (end === 'stopped') summary.stopped++;
        else if (end === 'skipped') summary.skipped++;
        else summary.completed++;
        options.onEvent?.({ type: 'end', dir: c.dir, label: c.label, end });
        return;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (attempt >= attempts || options.stopping?.()) {
          writeFailed(c.dir, message, attempt);
          summary.failed++;
          options.onEvent?.({ type: 'failed', dir: c.dir, label: c.label, error: message, attempt });
          return;
        }
        options.onEvent?.({ type: 'retry', dir: c.dir, label: c.label, error: message, attempt });
      }
    }
  };
  const pool = async (items: Array<{ dir: string; label: string }>) => {
    let next = 0;
    const lane = async () => {
      while (next < items.length && !options.stopping?.()) await runOne(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.jobs ?? 1, items.length)) }, lane));
  };
  await pool(plan.eifes);
  const ready = plan.cells.filter((c) => {
    const bad = c.needs.map((h) => plan.eifes.find((e) => e.hash === h)!).find((e) => !isDone(e.dir));
    if (!bad) return true;
    if (options.stopping?.()) return false;
    const why = readFailed(bad.dir)?.error ?? 'it did not finish';
    writeFailed(c.dir, `stage-1 extractor ${bad.label} (${bad.hash}) failed: ${why}`, 0);
    summary.failed++;
    return false;
  });
  await pool(ready);
  return summary;
}
