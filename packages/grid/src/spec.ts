import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '@dfd/core';
import { eifeConfigSchema, mergeConfig, trainConfigSchema } from '@dfd/trainer';

/** A scalar or object an axis can take (a value of a dfd train config field). */
const axisValue = z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown()), z.array(z.unknown())]);

/** The grid file: `base` (a dfd train config without `out`), `axes` (dotted path -> values), `eife` (stage-1 jobs). */
export const gridFileSchema = z
  .object({
    base: z.record(z.string(), z.unknown()),
    axes: z.record(z.string(), z.array(axisValue).min(1, 'an axis needs at least one value')).default({}),
    eife: z.array(z.record(z.string(), z.unknown())).default([]),
  })
  .strict();

/** What the grid file says, as written. */
export type GridFile = z.output<typeof gridFileSchema>;

/** One stage-1 job of a grid: an EIFE trained once and shared by every cell that needs it. */
export interface EifeJob {
  kind: 'eife';
  hash: string;
  dir: string;
  label: string;
  /** The validated `dfd train-eife` config (its `out` is `dir`). */
  config: Record<string, unknown>;
}

/** One cell of a grid: an ordinary `dfd train` run folder named by the hash of its resolved config. */
export interface GridCell {
  kind: 'dfd';
  hash: string;
  dir: string;
  /** Axis path -> value of this cell, in the grid file's axis order. */
  axes: Record<string, unknown>;
  label: string;
  /** The validated `dfd train` config (its `out` is `dir`). */
  config: Record<string, unknown>;
  /** Hashes of the grid's EIFE jobs this cell needs (variant att+eifp without its own `eife`). */
  needs: string[];
}

/** Most cells a grid may expand to unless {@link ExpandOptions.maxCells} says otherwise. */
export const DEFAULT_MAX_CELLS = 10_000;

/** A grid whose axes multiply to more cells than the cap (checked before anything is expanded). */
export class GridTooLargeError extends ConfigError {
  constructor(
    readonly cells: number,
    readonly cap: number,
    readonly sizes: Array<{ path: string; size: number }>,
    origin: string,
  ) {
    const message =
      `invalid ${origin}:\n  axes: ${sizes.map((a) => `${a.path} (${a.size})`).join(' x ')} = ${cells > Number.MAX_SAFE_INTEGER ? 'more than 2^53' : cells} cells, over the cap of ${cap}; ` +
      `drop values or split the grid into several grid files (or raise the cap with --max-cells N).`;
    super('axes', message);
    Object.defineProperty(this, 'message', { value: message });
  }
}

/** Options of {@link expandGrid}. */
export interface ExpandOptions {
  /** Most cells the grid may have (default {@link DEFAULT_MAX_CELLS}); more is a {@link GridTooLargeError}. */
  maxCells?: number;
}

/** A grid expanded against its output folder. */
export interface GridPlan {
  dir: string;
  axes: Array<{ path: string; values: unknown[] }>;
  eifes: EifeJob[];
  cells: GridCell[];
}

/** Config fields that do not change what a run computes; left out of the cell hash. */
const UNHASHED = ['out', 'console', 'jsonl', 'keepCheckpoints'];

/** JSON with object keys sorted at every level (stable across key order in the grid file). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** First 12 hex digits of the SHA-256 of the canonical JSON of a resolved config, without {@link UNHASHED} fields. */
export function configHash(config: Record<string, unknown>): string {
  const hashed: Record<string, unknown> = { ...config };
  for (const k of UNHASHED) delete hashed[k];
  const data = hashed.data as Record<string, unknown> | undefined;
  if (data) {
    // Prefetch depth changes when batches are decoded, not which.
    const { prefetch: _prefetch, ...rest } = data;
    hashed.data = rest;
  }
  return createHash('sha256').update(canonicalJson(hashed)).digest('hex').slice(0, 12);
}

/** Set `value` at a dotted `path` in a copy of `obj` (creating objects on the way). */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  const out = { ...obj };
  if (!rest.length) out[head!] = value;
  else {
    const inner = out[head!];
    out[head!] = setPath(inner && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : {}, rest.join('.'), value);
  }
  return out;
}

function cartesian(axes: Array<{ path: string; values: unknown[] }>): Array<Record<string, unknown>> {
  let rows: Array<Record<string, unknown>> = [{}];
  for (const a of axes) rows = rows.flatMap((r) => a.values.map((v) => ({ ...r, [a.path]: v })));
  return rows;
}

function valueText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** `variant=att seed=1`: a cell's axis values. */
export function cellLabel(axes: Record<string, unknown>): string {
  return Object.entries(axes)
    .map(([k, v]) => `${k}=${valueText(v)}`)
    .join(' ') || '(single cell)';
}

/**
 * Validate a grid file's contents (`origin` names it in errors) and expand it against the output
 * folder `dir`: one cell per combination of axis values, each validated with `dfd train`'s schema.
 * Every bad field becomes one line naming its path in the grid file (`base.model.width`,
 * `axes.variant[2]`, `eife.0.factors`).
 */
export function expandGrid(input: unknown, dir: string, origin = 'grid file', options: ExpandOptions = {}): GridPlan {
  const lines: string[] = [];
  const fail = (): never => {
    const err = new ConfigError(lines[0]!.split(':')[0]!.trim(), `invalid ${origin}:\n${lines.join('\n')}`);
    Object.defineProperty(err, 'message', { value: `invalid ${origin}:\n${[...new Set(lines)].join('\n')}` });
    throw err;
  };
  const parsed = gridFileSchema.safeParse(input);
  if (!parsed.success) {
    for (const i of parsed.error.issues) lines.push(`  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    fail();
  }
  const file = parsed.data!;
  const root = resolve(dir);
  if ('out' in file.base) lines.push('  base.out: leave it out; every cell gets its own folder under the grid folder (--out)');
  const axes = Object.entries(file.axes).map(([path, values]) => ({ path, values }));
  for (const a of axes) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(a.path)) lines.push(`  axes.${a.path}: an axis is a dotted config path, e.g. variant or model.width`);
    if (a.path === 'out' || a.path.startsWith('out.')) lines.push(`  axes.${a.path}: 'out' cannot be an axis; cells are named by their config hash`);
    if (a.path === 'backend') lines.push("  axes.backend: every cell of a grid runs on one backend; set base.backend instead");
    if (new Set(a.values.map(canonicalJson)).size !== a.values.length) lines.push(`  axes.${a.path}: values repeat; each value must appear once`);
  }
  if (lines.length) fail();
  // The product first: a few KB of axes can multiply to millions of cells (each a config in memory).
  const cap = options.maxCells ?? DEFAULT_MAX_CELLS;
  const total = axes.reduce((n, a) => n * a.values.length, 1);
  if (total > cap) throw new GridTooLargeError(total, cap, axes.map((a) => ({ path: a.path, size: a.values.length })), origin);

  // Stage-1 jobs: each inherits the base's epochs, model size, data settings and backend.
  const base = file.base;
  const baseModel = (base.model ?? {}) as Record<string, unknown>;
  const inherited: Record<string, unknown> = {
    ...(base.epochs !== undefined ? { epochs: base.epochs } : {}),
    ...(base.data !== undefined ? { data: base.data } : {}),
    ...(base.backend !== undefined ? { backend: base.backend } : {}),
    model: Object.fromEntries(['width', 'inputSize', 'layout'].filter((k) => baseModel[k] !== undefined).map((k) => [k, baseModel[k]])),
  };
  const eifes: EifeJob[] = [];
  file.eife.forEach((item, i) => {
    if ('out' in item) lines.push(`  eife.${i}.out: leave it out; stage-1 jobs live in <grid>/eife/<hash>`);
    const r = eifeConfigSchema.safeParse({ ...mergeConfig(inherited, item), out: '.', console: false, jsonl: true });
    if (!r.success) {
      for (const issue of r.error.issues) lines.push(`  eife.${i}.${issue.path.join('.') || '(item)'}: ${issue.message}`);
      return;
    }
    const hash = configHash(r.data as Record<string, unknown>);
    const d = join(root, 'eife', hash);
    const factors = (r.data.factors as string[]).join(',');
    eifes.push({ kind: 'eife', hash, dir: d, label: `eife ${r.data.dataset} [${factors}]`, config: { ...r.data, out: d } });
  });
  if (lines.length) fail();

  const cells: GridCell[] = [];
  const seen = new Map<string, string>();
  for (const assignment of cartesian(axes)) {
    let config: Record<string, unknown> = { ...base, console: false, jsonl: true };
    for (const [p, v] of Object.entries(assignment)) config = setPath(config, p, v);
    const r = trainConfigSchema.safeParse({ ...config, out: '.' });
    if (!r.success) {
      for (const issue of r.error.issues) {
        const path = issue.path.join('.');
        const axis = axes.find((a) => path === a.path || path.startsWith(`${a.path}.`) || a.path.startsWith(`${path}.`));
        if (axis) lines.push(`  axes.${axis.path}[${axis.values.findIndex((v) => canonicalJson(v) === canonicalJson(assignment[axis.path]))}]${path !== axis.path ? ` (${path})` : ''}: ${issue.message}`);
        else lines.push(`  base.${path || '(root)'}: ${issue.message}`);
      }
      continue;
    }
    const resolved = r.data as Record<string, unknown>;
    if (!(resolved.targets as unknown[]).length) {
      // A grid compares its cells on their targets: without one every cell would train and the report would have nothing to show.
      const axis = axes.find((a) => a.path === 'targets' || a.path.startsWith('targets.'));
      lines.push(axis ? `  axes.${axis.path}[${axis.values.findIndex((v) => canonicalJson(v) === canonicalJson(assignment[axis.path]))}]: no targets; a grid cell needs at least one target to be evaluated on` : '  base.targets: no targets; a grid compares its cells on their targets: give at least one (e.g. targets: {wild: synthetic:wild})');
      continue;
    }
    const needs = resolved.variant === 'att+eifp' && !(resolved.eife as string[]).length ? eifes.map((e) => e.hash) : [];
    if (resolved.variant === 'att+eifp' && !(resolved.eife as string[]).length && !eifes.length) {
      lines.push(`  eife: ${cellLabel(assignment)} is variant att+eifp and needs stage-1 extractors: list them under eife (or give base.eife folders)`);
      continue;
    }
    // The hash sees which grid EIFE jobs a cell uses, not where the grid folder is.
    const hash = configHash(needs.length ? { ...resolved, eife: needs.map((h) => `grid-eife:${h}`) } : resolved);
    const other = seen.get(hash);
    if (other) {
      lines.push(`  axes: ${cellLabel(assignment)} and ${other} resolve to the same config; remove the duplicate value`);
      continue;
    }
    seen.set(hash, cellLabel(assignment));
    const d = join(root, 'cells', hash);
    cells.push({ kind: 'dfd', hash, dir: d, axes: assignment, label: cellLabel(assignment), config: { ...resolved, out: d, ...(needs.length ? { eife: needs.map((h) => join(root, 'eife', h)) } : {}) }, needs });
  }
  if (lines.length) fail();
  return { dir: root, axes, eifes, cells };
}

/** Read a YAML or JSON grid file into a plain object. */
export function readGridFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('grid', `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError('grid', `${path} is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

/** {@link readGridFile} + {@link expandGrid}. */
export function loadGrid(path: string, dir: string, options: ExpandOptions = {}): GridPlan {
  return expandGrid(readGridFile(path), dir, path, options);
}
