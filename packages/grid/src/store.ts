import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@dfd/core';
import type { EifeJob, GridCell, GridPlan } from './spec.js';

/** The file in every cell folder that says what the cell is (written before it runs). */
export const CELL_FILE = 'grid-cell.json';
/** The file in a grid folder listing its cells (written by `dfd grid run`). */
export const GRID_FILE = 'grid.json';
/** Written into a cell folder when its last attempt failed. */
export const FAILED_FILE = 'failed.json';

/** What {@link CELL_FILE} holds. */
export type CellSpec = EifeJob | GridCell;

/** Where a cell is: finished (report.json with status completed), failed (no attempt left), started, or not started. */
export type CellState = 'done' | 'failed' | 'started' | 'waiting';

/** One cell's progress, read from its run folder. */
export interface CellProgress {
  hash: string;
  kind: 'dfd' | 'eife';
  label: string;
  state: CellState;
  /** Epochs finished / planned (from metrics.jsonl). */
  epoch: number;
  epochs: number;
  /** How many times training started in this folder (a resume counts). */
  starts: number;
  /** Seconds per epoch measured in this folder (NaN before the first epoch). */
  secondsPerEpoch: number;
  error?: string;
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

/** Write grid.json and every cell's grid-cell.json (idempotent: the same content for the same grid). */
export function prepareGrid(plan: GridPlan): void {
  mkdirSync(plan.dir, { recursive: true });
  for (const c of [...plan.eifes, ...plan.cells]) {
    mkdirSync(c.dir, { recursive: true });
    writeJsonAtomic(join(c.dir, CELL_FILE), c);
  }
  writeJsonAtomic(join(plan.dir, GRID_FILE), {
    axes: plan.axes,
    eife: plan.eifes.map((e) => ({ hash: e.hash, label: e.label })),
    cells: plan.cells.map((c) => ({ hash: c.hash, label: c.label, axes: c.axes, needs: c.needs })),
  });
}

/** The grid.json of a grid folder (what `status` and `report` read). */
export interface GridIndex {
  axes: Array<{ path: string; values: unknown[] }>;
  eife: Array<{ hash: string; label: string }>;
  cells: Array<{ hash: string; label: string; axes: Record<string, unknown>; needs: string[] }>;
}

/** Read a grid folder's index. */
export function readGridIndex(dir: string): GridIndex {
  const path = join(dir, GRID_FILE);
  if (!existsSync(path)) throw new ConfigError('grid', `${path} not found: ${dir} is not a grid folder (run 'dfd grid run GRID --out ${dir}' first).`);
  return JSON.parse(readFileSync(path, 'utf8')) as GridIndex;
}

/** Read a cell folder's grid-cell.json. */
export function readCellSpec(dir: string): CellSpec {
  const path = join(dir, CELL_FILE);
  if (!existsSync(path)) throw new ConfigError('cell', `${path} not found: ${dir} is not a grid cell folder.`);
  return JSON.parse(readFileSync(path, 'utf8')) as CellSpec;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** True when the cell's run finished (report.json with status completed): it is never run again. */
export function isDone(dir: string): boolean {
  return readJson<{ status?: string }>(join(dir, 'report.json'))?.status === 'completed';
}

/** True when a checkpoint exists to resume from. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'checkpoints', 'latest')) && existsSync(join(dir, 'config.json'));
}

/** Record that a cell used up its attempts. */
export function writeFailed(dir: string, error: string, attempts: number): void {
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, FAILED_FILE), { error, attempts, time: new Date().toISOString() });
}

/** Forget an earlier failure (a new `dfd grid run` tries the cell again). */
export function clearFailed(dir: string): void {
  rmSync(join(dir, FAILED_FILE), { force: true });
}

/** The failure recorded in a cell folder, if any. */
export function readFailed(dir: string): { error: string; attempts: number } | null {
  return readJson(join(dir, FAILED_FILE));
}

interface MetricLine {
  type: string;
  time?: string;
  epoch?: number;
  epochs?: number;
  startEpoch?: number;
  status?: string;
}

/** Every event of a run folder's metrics.jsonl (a line cut by a kill is skipped). */
export function readMetrics(dir: string): MetricLine[] {
  let text: string;
  try {
    text = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
  } catch {
    return [];
  }
  const out: MetricLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricLine);
    } catch {
      // The last line of a killed run can be cut.
    }
  }
  return out;
}

/** A cell's state and progress from its folder. */
export function cellProgress(spec: { hash: string; kind?: 'dfd' | 'eife'; label: string; dir: string; epochs?: number }): CellProgress {
  const events = readMetrics(spec.dir);
  const starts = events.filter((e) => e.type === 'runStart');
  const lastStart = starts.at(-1);
  const epochs = lastStart?.epochs ?? spec.epochs ?? 0;
  let epoch = lastStart?.startEpoch ?? 0;
  let spent = 0;
  let counted = 0;
  let from: number | null = null;
  for (const e of events) {
    const t = e.time ? Date.parse(e.time) : Number.NaN;
    if (e.type === 'runStart') from = t;
    if (e.type === 'epochEnd') {
      // epochEnd.epoch counts the epochs completed (1-based).
      epoch = e.epoch ?? epoch + 1;
      if (from !== null && Number.isFinite(t)) {
        spent += (t - from) / 1000;
        counted++;
      }
      from = t;
    }
  }
  const failed = readFailed(spec.dir);
  const done = isDone(spec.dir);
  return {
    hash: spec.hash,
    kind: spec.kind ?? 'dfd',
    label: spec.label,
    state: done ? 'done' : failed ? 'failed' : starts.length ? 'started' : 'waiting',
    epoch: done ? epochs : epoch,
    epochs,
    starts: starts.length,
    secondsPerEpoch: counted ? spent / counted : Number.NaN,
    ...(failed ? { error: failed.error } : {}),
  };
}

/** Progress of every stage-1 job and cell of a grid folder. */
export function gridProgress(dir: string): CellProgress[] {
  const index = readGridIndex(dir);
  const epochsOf = (d: string) => (readJson<{ config?: { epochs?: number } }>(join(d, CELL_FILE))?.config?.epochs ?? 0);
  return [
    ...index.eife.map((e) => cellProgress({ ...e, kind: 'eife', dir: join(dir, 'eife', e.hash), epochs: epochsOf(join(dir, 'eife', e.hash)) })),
    ...index.cells.map((c) => cellProgress({ ...c, kind: 'dfd', dir: join(dir, 'cells', c.hash), epochs: epochsOf(join(dir, 'cells', c.hash)) })),
  ];
}

/** Counts and an ETA over a grid's progress. `parallel`: how many cells run at once (default: the started ones, at least 1). */
export function summariseProgress(cells: CellProgress[], parallel?: number): { waiting: number; running: number; done: number; failed: number; etaSeconds: number } {
  const count = (s: CellState) => cells.filter((c) => c.state === s).length;
  const rates = cells.map((c) => c.secondsPerEpoch).filter((x) => Number.isFinite(x));
  const perEpoch = rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : Number.NaN;
  const left = cells.filter((c) => c.state === 'waiting' || c.state === 'started').reduce((a, c) => a + Math.max(0, c.epochs - c.epoch), 0);
  const running = count('started');
  const p = Math.max(1, parallel ?? running);
  return { waiting: count('waiting'), running, done: count('done'), failed: count('failed'), etaSeconds: left === 0 ? 0 : (perEpoch * left) / p };
}

/** `1h02m`, `3m05s`, `12s`, `?`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** The status block `dfd grid status` prints: counts, ETA, one line per cell. */
export function formatStatus(cells: CellProgress[], parallel?: number): string {
  const s = summariseProgress(cells, parallel);
  const lines = [`waiting ${s.waiting} · running ${s.running} · done ${s.done} · failed ${s.failed} · ETA ${formatDuration(s.etaSeconds)}`];
  for (const c of cells) {
    const resumed = c.starts > 1 ? ` (resumed ${c.starts - 1}x)` : '';
    lines.push(`  ${c.hash}  ${c.state.padEnd(7)}  epoch ${c.epoch}/${c.epochs}${resumed}  ${c.kind === 'eife' ? c.label : c.label}${c.error ? `  error: ${c.error.split('\n')[0]}` : ''}`);
  }
  return lines.join('\n');
}
