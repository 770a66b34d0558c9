import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from './errors.js';
import { pidAlive } from './run-folder.js';
import { checkpointName, type Checkpoint, type CheckpointMeta, type CheckpointSaveMeta, type CheckpointStore, type LoadedCheckpoint, type StoredTensor } from './checkpoint-store.js';

const LATEST = 'latest';
const STEP = /^step-\d+(-e\d+s\d+)?$/;
const TEMP = /^(step-\d+(-e\d+s\d+)?|latest)\.tmp-(\d+)$/;

/** Writes `chunks` to `path` and fsyncs it; errors name the file (a write error through a descriptor has no path of its own). */
export function writeFileDurable(path: string, chunks: Uint8Array[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off);
    }
    fsyncSync(fd);
  } catch (err) {
    // Writes through a descriptor carry no path (a full disk): name the file.
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e === 'object' && e.path === undefined) e.path = path;
    throw err;
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The file {@link CheckpointStore} (Node): checkpoints of one run under `<runDir>/checkpoints/`.
 * Each save writes a fresh folder `step-<n>.tmp`, fsyncs its files, renames it to `step-<n>`,
 * then atomically replaces the `latest` pointer file (temp file + fsync + rename). A crash at any
 * point leaves `latest` naming a complete checkpoint.
 */
export class FsCheckpointStore implements CheckpointStore {
  readonly dir: string;

  constructor(
    runDir: string,
    /** How many checkpoint folders to keep (default 2). */
    private readonly keep = 2,
  ) {
    this.dir = join(runDir, 'checkpoints');
  }

  /** The checkpoints folder. */
  get location(): string {
    return this.dir;
  }

  /** Write a checkpoint; returns its folder. */
  save(meta: CheckpointSaveMeta, tensors: Map<string, StoredTensor>): string {
    mkdirSync(this.dir, { recursive: true });
    this.removeStaleTemp();
    const name = checkpointName(meta);
    const final = join(this.dir, name);
    const tmp = `${final}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const manifest: CheckpointMeta['manifest'] = [];
    const chunks: Uint8Array[] = [];
    const hash = createHash('sha256');
    let offset = 0;
    for (const [tname, t] of tensors) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      manifest.push({ name: tname, shape: t.shape, dtype: t.dtype, offset, length: t.data.length });
      chunks.push(bytes);
      hash.update(bytes);
      offset += bytes.byteLength;
    }
    const full: CheckpointMeta = { format: 'dfd-checkpoint', formatVersion: 1, ...meta, sha256: hash.digest('hex'), bytes: offset, manifest };
    writeFileDurable(join(tmp, 'tensors.bin'), chunks);
    writeFileDurable(join(tmp, 'checkpoint.json'), [Buffer.from(JSON.stringify(full))]);
    fsyncDir(tmp);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    const pointerTmp = join(this.dir, `${LATEST}.tmp-${process.pid}`);
    writeFileDurable(pointerTmp, [Buffer.from(name + '\n')]);
    renameSync(pointerTmp, join(this.dir, LATEST));
    fsyncDir(this.dir);
    this.prune(name);
    return final;
  }

  /**
   * Removes temp folders and pointer files left by a save that was killed (`step-*.tmp-<pid>`,
   * `latest.tmp-<pid>`) whose process is gone (or is this one); returns their names.
   */
  removeStaleTemp(): string[] {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    for (const n of readdirSync(this.dir)) {
      const m = TEMP.exec(n);
      if (!m) continue;
      const pid = Number(m[3]);
      if (pid !== process.pid && pidAlive(pid)) continue;
      rmSync(join(this.dir, n), { recursive: true, force: true });
      removed.push(n);
    }
    return removed;
  }

  /** Complete checkpoint folders, newest first. */
  folders(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((n) => STEP.test(n))
      .sort()
      .reverse();
  }

  private prune(current: string): void {
    const all = readdirSync(this.dir)
      .filter((n) => STEP.test(n))
      .sort();
    const old = all.filter((n) => n !== current).slice(0, Math.max(0, all.length - this.keep));
    for (const n of old) rmSync(join(this.dir, n), { recursive: true, force: true });
  }

  /** Whether a checkpoint exists (the `latest` pointer, or a checkpoint folder). */
  exists(): boolean {
    return existsSync(join(this.dir, LATEST)) || this.folders().length > 0;
  }

  /** Folder of the latest complete checkpoint. */
  latestPath(): string {
    const pointer = join(this.dir, LATEST);
    if (!existsSync(pointer)) throw new CheckpointError(`no checkpoint in ${this.dir} (missing '${LATEST}'); was this run started with --out pointing here?`);
    return join(this.dir, readFileSync(pointer, 'utf8').trim());
  }

  /** Read the latest checkpoint. */
  load(): Checkpoint {
    return readCheckpoint(this.latestPath());
  }

  /**
   * Reads the checkpoint named by `latest`; when it is missing, truncated, corrupted (checksum)
   * or unreadable, the newest intact older one, and says what was skipped. Throws a
   * {@link CheckpointError} listing every reason when none can be read.
   */
  loadNewestIntact(): LoadedCheckpoint {
    const pointer = join(this.dir, LATEST);
    let first: string | null = null;
    const skipped: LoadedCheckpoint['skipped'] = [];
    if (existsSync(pointer)) {
      try {
        first = readFileSync(pointer, 'utf8').trim();
      } catch (err) {
        skipped.push({ path: pointer, reason: (err as Error).message });
      }
    }
    const order = [...(first ? [first] : []), ...this.folders().filter((n) => n !== first)];
    if (!order.length) throw new CheckpointError(`no checkpoint in ${this.dir} (missing '${LATEST}'); was this run started with --out pointing here?`);
    for (const name of order) {
      const path = join(this.dir, name);
      try {
        return { checkpoint: readCheckpoint(path), path, skipped };
      } catch (err) {
        skipped.push({ path, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    throw new CheckpointError(`no intact checkpoint in ${this.dir}: ${skipped.map((s) => s.reason).join('; ')}. Start the run again without --resume (or with --overwrite).`);
  }
}

/** Read one checkpoint folder. */
export function readCheckpoint(path: string): Checkpoint {
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(join(path, 'checkpoint.json'), 'utf8')) as CheckpointMeta;
  } catch (err) {
    throw new CheckpointError(`cannot read ${join(path, 'checkpoint.json')}: ${(err as Error).message}`, { cause: err });
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== 'dfd-checkpoint' || meta.formatVersion !== 1 || !Array.isArray(meta.manifest)) {
    throw new CheckpointError(`${path} is not a dfd checkpoint (format ${String(meta?.format)} v${String(meta?.formatVersion)}, ${Array.isArray(meta?.manifest) ? 'with' : 'no'} tensor manifest).`);
  }
  const binPath = join(path, 'tensors.bin');
  let bin: Buffer;
  try {
    bin = readFileSync(binPath);
  } catch (err) {
    throw new CheckpointError(`cannot read ${binPath}: ${(err as Error).message}`, { cause: err });
  }
  const tensors = new Map<string, StoredTensor>();
  for (const e of meta.manifest) {
    const bytes = bin.subarray(e.offset, e.offset + e.length * 4);
    if (bytes.length !== e.length * 4) throw new CheckpointError(`${join(path, 'tensors.bin')} is truncated at tensor '${e.name}'.`);
    const copy = new Uint8Array(bytes).buffer;
    tensors.set(e.name, { shape: e.shape, dtype: e.dtype, data: e.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy) });
  }
  if (meta.bytes !== undefined && bin.length !== meta.bytes) {
    throw new CheckpointError(`${binPath} is truncated or too long: ${bin.length} bytes, the checkpoint wrote ${meta.bytes}.`);
  }
  if (meta.sha256 !== undefined) {
    const actual = createHash('sha256').update(bin).digest('hex');
    if (actual !== meta.sha256) throw new CheckpointError(`${binPath} is corrupted: its sha256 is ${actual}, the checkpoint wrote ${meta.sha256}.`);
  }
  return { meta, tensors };
}
