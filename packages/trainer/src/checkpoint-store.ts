// What the trainer needs from a checkpoint store, and the in-memory store. Browser-safe: no
// `node:` import here; the file store (atomic folders, sha256) is `FsCheckpointStore` in
// `@dfd/trainer/node`.
import { CheckpointError } from './errors.js';

/** A named tensor in a checkpoint. */
export interface StoredTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

/** Everything a checkpoint holds: JSON metadata plus named tensors (weights, buffers, optimizer moments). */
export interface Checkpoint {
  meta: CheckpointMeta;
  tensors: Map<string, StoredTensor>;
}

/** The JSON part of a checkpoint. */
export interface CheckpointMeta {
  format: 'dfd-checkpoint';
  formatVersion: 1;
  stage: string;
  runId: string;
  /** Epochs fully done. */
  epoch: number;
  /** Steps done inside epoch `epoch` (non-zero after a mid-epoch stop). */
  stepInEpoch: number;
  globalStep: number;
  rng: number[];
  loader: unknown;
  plugins: Record<string, unknown>;
  optimizer: { groups: Array<{ name: string; lr: number; weightDecay: number }>; steps: Record<string, number> };
  /** Running sums of the current epoch, so that a mid-epoch resume reports the same epoch metrics. */
  epochAccumulator: Record<string, number>;
  history: Array<Record<string, number>>;
  extra?: Record<string, unknown>;
  /** sha256 (hex) and size of tensors.bin, verified when the checkpoint is read (absent in older checkpoints and in memory). */
  sha256?: string;
  bytes?: number;
  /** sha256 (hex) of the canonical JSON of every other field (manifest included), verified when read (absent in checkpoints written before it was added, and in memory). */
  metaSha256?: string;
  manifest: Array<{ name: string; shape: number[]; dtype: 'float32' | 'int32'; offset: number; length: number }>;
}

/** What the trainer hands to {@link CheckpointStore.save}: the store adds the format, manifest and checksum. */
export type CheckpointSaveMeta = Omit<CheckpointMeta, 'manifest' | 'format' | 'formatVersion' | 'sha256' | 'bytes' | 'metaSha256'>;

/** A checkpoint read by {@link CheckpointStore.loadNewestIntact}, with what was skipped to get to it. */
export interface LoadedCheckpoint {
  checkpoint: Checkpoint;
  /** Where it is (a folder for the file store). */
  path: string;
  /** Newer checkpoints that could not be read, newest first, with the reason. */
  skipped: Array<{ path: string; reason: string }>;
}

/**
 * Where a {@link Trainer} keeps its checkpoints (given to `composeTrainer` as `checkpoints`; none
 * means no checkpointing and no resume). `FsCheckpointStore` (`@dfd/trainer/node`) writes them
 * to `<run>/checkpoints/` atomically; {@link MemoryCheckpointStore} keeps them in memory (the
 * browser, tests). The trainer calls `save` before the first step, at every epoch end and on a
 * stop, and on `resume` calls `exists`, `removeStaleTemp` and `loadNewestIntact`.
 */
export interface CheckpointStore {
  /** Where the checkpoints are (a folder, or a name), for messages. */
  readonly location: string;
  /** Writes a checkpoint and makes it the latest; returns where it is (reported in `checkpoint` events and failure messages). */
  save(meta: CheckpointSaveMeta, tensors: Map<string, StoredTensor>): string;
  /** Whether there is a checkpoint to resume from. */
  exists(): boolean;
  /** Removes what saves that were killed left behind; returns their names (empty when there were none). */
  removeStaleTemp(): string[];
  /**
   * The latest checkpoint, or when it cannot be read the newest older one that can, saying what
   * was skipped. Throws a `CheckpointError` when none can be read.
   */
  loadNewestIntact(): LoadedCheckpoint;
}

/** A checkpoint's name: `step-<globalStep, 8 digits>`, with `-e<epoch>s<step>` after a mid-epoch stop. Names sort in save order. */
export function checkpointName(meta: Pick<CheckpointMeta, 'globalStep' | 'epoch' | 'stepInEpoch'>): string {
  return `step-${String(meta.globalStep).padStart(8, '0')}${meta.stepInEpoch ? `-e${meta.epoch}s${meta.stepInEpoch}` : ''}`;
}

/** The tensor manifest of `tensors` laid out back to back (byte offsets, lengths in values). */
export function checkpointManifest(tensors: Map<string, StoredTensor>): { manifest: CheckpointMeta['manifest']; bytes: number } {
  const manifest: CheckpointMeta['manifest'] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    manifest.push({ name, shape: t.shape, dtype: t.dtype, offset, length: t.data.length });
    offset += t.data.byteLength;
  }
  return { manifest, bytes: offset };
}

function copyCheckpoint(c: Checkpoint): Checkpoint {
  const tensors = new Map<string, StoredTensor>();
  for (const [name, t] of c.tensors) tensors.set(name, { shape: [...t.shape], dtype: t.dtype, data: t.data.slice() });
  return { meta: structuredClone(c.meta), tensors };
}

/**
 * Checkpoints kept in memory (no file system: the browser, tests). Saves and loads copy, so the
 * trainer's later steps never change a saved checkpoint; the newest `keep` are kept.
 */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly saved: Array<{ name: string; checkpoint: Checkpoint }> = [];

  constructor(
    /** A name for messages, e.g. the run's id (default 'memory'). */
    readonly location = 'memory',
    /** How many checkpoints to keep (default 2). */
    private readonly keep = 2,
  ) {
    if (!Number.isInteger(keep) || keep < 1) throw new CheckpointError(`MemoryCheckpointStore keeps at least one checkpoint; got keep = ${keep}.`);
  }

  save(meta: CheckpointSaveMeta, tensors: Map<string, StoredTensor>): string {
    const name = checkpointName(meta);
    const { manifest, bytes } = checkpointManifest(tensors);
    const checkpoint = copyCheckpoint({ meta: { format: 'dfd-checkpoint', formatVersion: 1, ...meta, bytes, manifest }, tensors });
    const at = this.saved.findIndex((s) => s.name === name);
    if (at >= 0) this.saved.splice(at, 1);
    this.saved.push({ name, checkpoint });
    this.saved.splice(0, Math.max(0, this.saved.length - this.keep));
    return `${this.location}/${name}`;
  }

  exists(): boolean {
    return this.saved.length > 0;
  }

  /** Nothing is left behind by an interrupted save in memory: always empty. */
  removeStaleTemp(): string[] {
    return [];
  }

  /** Names of the kept checkpoints, newest first. */
  names(): string[] {
    return this.saved.map((s) => s.name).reverse();
  }

  loadNewestIntact(): LoadedCheckpoint {
    const newest = this.saved.at(-1);
    if (!newest) throw new CheckpointError(`no checkpoint in ${this.location}: nothing was saved to this store yet.`);
    return { checkpoint: copyCheckpoint(newest.checkpoint), path: `${this.location}/${newest.name}`, skipped: [] };
  }
}
