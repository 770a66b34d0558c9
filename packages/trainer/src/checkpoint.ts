import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
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

/**
 * Replaces `path` atomically: writes `<path>.tmp-<pid>`, fsyncs it, renames it over `path` and
 * fsyncs the folder. A failure (a full disk) leaves `path` as it was, removes the temp file and
 * names the file in the error.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileDurable(tmp, [typeof data === 'string' ? Buffer.from(data) : data]);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e === 'object' && e.path === tmp) e.path = path;
    throw err;
  }
  fsyncDir(dirname(path));
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
    const body: CheckpointMeta = { format: 'dfd-checkpoint', formatVersion: 1, ...meta, sha256: hash.digest('hex'), bytes: offset, manifest };
    // Hashed as it will be read back (toJSON, dropped undefined, NaN as null), so no value of plugin state breaks the check.
    const full: CheckpointMeta = { ...body, metaSha256: metaChecksum(JSON.parse(JSON.stringify(body)) as CheckpointMeta) };
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
    return join(this.dir, readPointer(pointer));
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
        first = readPointer(pointer);
      } catch (err) {
        skipped.push({ path: pointer, reason: err instanceof Error ? err.message : String(err) });
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

/**
 * Reads the `latest` pointer file: one plain checkpoint name (`step-<n>`, `step-<n>-e<e>s<s>`)
 * inside its own checkpoints folder. Anything else (a path, `..`, another run's folder) is a
 * {@link CheckpointError}: a run never resumes from weights outside its folder.
 */
export function readPointer(pointer: string): string {
  const name = readFileSync(pointer, 'utf8').trim();
  if (!STEP.test(name)) {
    throw new CheckpointError(
      `${pointer} names ${JSON.stringify(name.slice(0, 200))}, not a checkpoint of this run (a plain name such as step-00000012); it may only name a folder next to it. Delete ${pointer} to resume from the newest checkpoint folder there.`,
    );
  }
  return name;
}

/** JSON with object keys sorted at every level: the bytes {@link metaChecksum} hashes. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * sha256 (hex) of a checkpoint's metadata (every field but `metaSha256`, canonical JSON): the
 * epoch, steps, RNG, plugin and optimizer state and the tensor manifest (names, shapes, offsets)
 * are under a checksum as tensors.bin is under `sha256`.
 */
export function metaChecksum(meta: Omit<CheckpointMeta, 'metaSha256'> & { metaSha256?: string }): string {
  const { metaSha256: _omit, ...rest } = meta;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const finiteRecord = z.record(z.string(), z.number().refine((n) => Number.isFinite(n), 'a finite number'));
/** The schema of checkpoint.json: every field the trainer reads on resume. */
const checkpointMetaSchema = z.object({
  format: z.literal('dfd-checkpoint'),
  formatVersion: z.literal(1),
  stage: z.string().min(1),
  runId: z.string(),
  epoch: count,
  stepInEpoch: count,
  globalStep: count,
  rng: z.array(z.number().int()).min(1),
  loader: z.unknown(),
  plugins: z.record(z.string(), z.unknown()),
  optimizer: z.object({
    groups: z.array(z.object({ name: z.string(), lr: z.number().refine((n) => Number.isFinite(n), 'a finite number'), weightDecay: z.number().refine((n) => Number.isFinite(n), 'a finite number') })),
    steps: z.record(z.string(), count),
  }),
  epochAccumulator: finiteRecord,
  history: z.array(z.record(z.string(), z.number().nullable())),
  extra: z.record(z.string(), z.unknown()).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  bytes: count.optional(),
  metaSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  manifest: z.array(z.object({ name: z.string().min(1), shape: z.array(count), dtype: z.enum(['float32', 'int32']), offset: count, length: count })),
});

/**
 * Validates checkpoint.json's parsed content: the schema, its own checksum (`metaSha256`, written
 * by every save since it was added; checkpoints without one are read with the other checks), and
 * what must hold between fields (one history entry per epoch done, the manifest laid out back to
 * back in order, each tensor's length its shape's product). Errors name the file and the field.
 */
function validateMeta(raw: unknown, file: string): CheckpointMeta {
  const parsed = checkpointMetaSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new CheckpointError(`${file} is not a valid dfd checkpoint: ${issues.join('; ')}. It was edited or damaged; resume falls back to an older checkpoint if there is one, else start the run again (--overwrite).`);
  }
  const meta = parsed.data as CheckpointMeta;
  const bad = (field: string, why: string) => new CheckpointError(`${file}: field ${field} ${why}; the checkpoint was edited or damaged (resume falls back to an older checkpoint if there is one, else start again with --overwrite).`);
  if (meta.metaSha256 !== undefined) {
    const actual = metaChecksum(meta);
    if (actual !== meta.metaSha256) throw bad('metaSha256', `does not match the metadata (sha256 ${actual}, written ${meta.metaSha256})`);
  }
  if (meta.history.length !== meta.epoch) throw bad('epoch', `is ${meta.epoch} but history holds ${meta.history.length} epoch(s)`);
  let offset = 0;
  for (const [i, e] of meta.manifest.entries()) {
    if (e.offset !== offset) throw bad(`manifest.${i}.offset`, `is ${e.offset} for tensor '${e.name}', where the tensors laid out in order put it at ${offset}`);
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (size !== e.length) throw bad(`manifest.${i}.length`, `is ${e.length} for tensor '${e.name}' of shape [${e.shape.join(', ')}] (${size} values)`);
    offset += e.length * 4;
  }
  if (meta.bytes !== undefined && meta.bytes !== offset) throw bad('bytes', `is ${meta.bytes} but the manifest's tensors take ${offset}`);
  return meta;
}

/** Read one checkpoint folder; its checkpoint.json is validated ({@link validateMeta}) and tensors.bin checked against it. */
export function readCheckpoint(path: string): Checkpoint {
  const file = join(path, 'checkpoint.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const m = raw as Partial<CheckpointMeta> | null;
  if (m === null || typeof m !== 'object' || m.format !== 'dfd-checkpoint' || m.formatVersion !== 1 || !Array.isArray(m.manifest)) {
    throw new CheckpointError(`${path} is not a dfd checkpoint (format ${String(m?.format)} v${String(m?.formatVersion)}, ${Array.isArray(m?.manifest) ? 'with' : 'no'} tensor manifest).`);
  }
  const meta = validateMeta(raw, file);
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
