import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeFsError } from '@dfd/core';
import { FsCheckpointStore, readCheckpoint, writeFileDurable } from './checkpoint.js';
import { CheckpointError } from './errors.js';

const meta = (globalStep: number, stepInEpoch = 0) => ({
  stage: 'dfd',
  runId: 'r',
  epoch: 1,
  stepInEpoch,
  globalStep,
  rng: [1, 2, 3, 4],
  loader: null,
  plugins: { es: { wait: 2 } },
  optimizer: { groups: [], steps: { w: globalStep } },
  epochAccumulator: {},
  history: [{ loss: 1.5 }],
});

describe('FsCheckpointStore', () => {
  it('round-trips tensors and metadata, moves the latest pointer, prunes old folders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const store = new FsCheckpointStore(dir, 2);
    expect(store.exists()).toBe(false);
    expect(() => store.load()).toThrow(/no checkpoint in .*missing 'latest'/);
    for (const step of [3, 6, 9]) {
      store.save(meta(step), new Map([
        ['model/w', { shape: [2, 2], dtype: 'float32' as const, data: Float32Array.from([step, -1.5, 0.25, 1e-8]) }],
        ['model/n', { shape: [1], dtype: 'int32' as const, data: Int32Array.from([step]) }],
      ]));
    }
    const c = store.load();
    expect(c.meta).toMatchObject({ format: 'dfd-checkpoint', globalStep: 9, plugins: { es: { wait: 2 } }, rng: [1, 2, 3, 4] });
    expect(Array.from(c.tensors.get('model/w')!.data)).toEqual([9, -1.5, 0.25, Math.fround(1e-8)]);
    expect(c.tensors.get('model/n')!.data).toBeInstanceOf(Int32Array);
    expect(readFileSync(join(dir, 'checkpoints', 'latest'), 'utf8').trim()).toBe('step-00000009');
    expect(readdirSync(join(dir, 'checkpoints')).sort()).toEqual(['latest', 'step-00000006', 'step-00000009']);
  });

  it('a crash mid-write (leftover temp folder) leaves the previous checkpoint in force', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const store = new FsCheckpointStore(dir);
    store.save(meta(4), new Map([['model/w', { shape: [1], dtype: 'float32' as const, data: Float32Array.from([4]) }]]));
    // What a kill during the next save leaves behind: a temp folder with a partial file.
    const tmp = join(dir, 'checkpoints', 'step-00000008.tmp-999');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'tensors.bin'), Buffer.alloc(2));
    expect(store.load().meta.globalStep).toBe(4);
    // A truncated tensors.bin is reported, not read as garbage.
    const path = store.latestPath();
    writeFileSync(join(path, 'tensors.bin'), Buffer.alloc(2));
    expect(() => store.load()).toThrow(/tensors\.bin is truncated at tensor 'model\/w'/);
    expect(existsSync(tmp)).toBe(true);
  });
});

/** The pid of a process that has exited (so it names no running process). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('FsCheckpointStore integrity (issue 17)', () => {
  const tensor = (v: number) => new Map([['model/w', { shape: [4], dtype: 'float32' as const, data: Float32Array.from([v, v + 1, v + 2, v + 3]) }]]);

  it('a checkpoint carries the sha256 and size of tensors.bin; same-size corruption is detected on read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-sum-'));
    const store = new FsCheckpointStore(dir);
    const path = store.save(meta(5), tensor(5));
    const json = JSON.parse(readFileSync(join(path, 'checkpoint.json'), 'utf8'));
    const bin = readFileSync(join(path, 'tensors.bin'));
    expect(json.bytes).toBe(16);
    expect(json.sha256).toBe(createHash('sha256').update(bin).digest('hex'));
    bin[3] ^= 0x40;
    writeFileSync(join(path, 'tensors.bin'), bin);
    expect(() => readCheckpoint(path)).toThrow(CheckpointError);
    expect(() => readCheckpoint(path)).toThrow(/tensors\.bin is corrupted: its sha256 is [0-9a-f]{64}, the checkpoint wrote [0-9a-f]{64}/);
    writeFileSync(join(path, 'tensors.bin'), Buffer.concat([readFileSync(join(path, 'tensors.bin')), Buffer.alloc(4)]));
    expect(() => readCheckpoint(path)).toThrow(/is truncated or too long: 20 bytes, the checkpoint wrote 16/);
    rmSync(join(path, 'tensors.bin'));
    expect(() => readCheckpoint(path)).toThrow(/cannot read .*tensors\.bin: ENOENT/);
  });

  it('loadNewestIntact falls back to the newest intact checkpoint and says what it skipped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-fall-'));
    const store = new FsCheckpointStore(dir, 3);
    const paths = [2, 4, 6].map((s) => store.save(meta(s), tensor(s)));
    const bin = readFileSync(join(paths[2]!, 'tensors.bin'));
    bin[0] ^= 1;
    writeFileSync(join(paths[2]!, 'tensors.bin'), bin);
    rmSync(join(paths[1]!, 'checkpoint.json'));
    const r = store.loadNewestIntact();
    expect(r.path).toBe(paths[0]);
    expect(r.checkpoint.meta.globalStep).toBe(2);
    expect(Array.from(r.checkpoint.tensors.get('model/w')!.data)).toEqual([2, 3, 4, 5]);
    expect(r.skipped.map((s) => s.path)).toEqual([paths[2], paths[1]]);
    expect(r.skipped[0]!.reason).toMatch(/corrupted/);
    expect(r.skipped[1]!.reason).toMatch(/cannot read .*checkpoint\.json/);
    // The pointer lost (killed between the folder rename and the pointer write): the folders still count.
    rmSync(join(dir, 'checkpoints', 'latest'));
    expect(store.exists()).toBe(true);
    expect(store.loadNewestIntact().path).toBe(paths[0]);
    writeFileSync(join(paths[0]!, 'tensors.bin'), Buffer.alloc(3));
    expect(() => store.loadNewestIntact()).toThrow(/no intact checkpoint in .*corrupted.*checkpoint\.json.*truncated/);
  });

  it('a save removes unfinished writes of processes that are gone, never those of a running one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-stale-'));
    const store = new FsCheckpointStore(dir);
    store.save(meta(1), tensor(1));
    const dead = deadPid();
    const ckpts = join(dir, 'checkpoints');
    for (const n of [`step-00000002.tmp-${dead}`, `step-00000003-e0s3.tmp-${dead}`, `step-00000004.tmp-${process.ppid}`]) {
      mkdirSync(join(ckpts, n));
      writeFileSync(join(ckpts, n, 'tensors.bin'), Buffer.alloc(2));
    }
    writeFileSync(join(ckpts, `latest.tmp-${dead}`), 'step-00000002\n');
    store.save(meta(5), tensor(5));
    expect(readdirSync(ckpts).sort()).toEqual(['latest', 'step-00000001', `step-00000004.tmp-${process.ppid}`, 'step-00000005']);
  });
});

describe('checkpoint writes on a full disk (issue 17)', () => {
  it.skipIf(!existsSync('/dev/full'))('the error names the file, so the CLI prints one line with the path and the cause', () => {
    const err = (() => {
      try {
        writeFileDurable('/dev/full', [new Uint8Array(4096)]);
      } catch (e) {
        return e;
      }
    })();
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(describeFsError(err)).toBe('cannot write /dev/full: no space left on the device (ENOSPC)');
  });
});

describe('checkpoint metadata is input (issue 24, cases 5 and 10)', () => {
  const tensors = () => new Map([
    ['model/a', { shape: [2], dtype: 'float32' as const, data: Float32Array.from([1, 2]) }],
    ['model/b', { shape: [2], dtype: 'float32' as const, data: Float32Array.from([3, 4]) }],
  ]);
  const edit = (folder: string, f: (j: Record<string, unknown>) => void) => {
    const file = join(folder, 'checkpoint.json');
    const j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    f(j);
    writeFileSync(file, JSON.stringify(j));
  };

  it('writes a checksum over the metadata and refuses swapped manifest offsets, naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const folder = new FsCheckpointStore(dir).save(meta(3), tensors());
    expect(JSON.parse(readFileSync(join(folder, 'checkpoint.json'), 'utf8')).metaSha256).toMatch(/^[0-9a-f]{64}$/);
    const swap = (j: Record<string, unknown>) => {
      const m = j.manifest as Array<{ offset: number }>;
      [m[0]!.offset, m[1]!.offset] = [m[1]!.offset, m[0]!.offset];
    };
    edit(folder, swap);
    expect(() => readCheckpoint(folder)).toThrow(CheckpointError);
    expect(() => readCheckpoint(folder)).toThrow(/checkpoint\.json: field metaSha256 does not match/);
    // Without the checksum (a checkpoint written before it existed) the layout check still refuses it.
    edit(folder, (j) => delete j.metaSha256);
    expect(() => readCheckpoint(folder)).toThrow(/field manifest\.0\.offset is 8 for tensor 'model\/a'/);
  });

  it('validates every field: "epoch": "x" and an epoch of 1e9 are refused, naming the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const folder = new FsCheckpointStore(dir).save(meta(3), tensors());
    edit(folder, (j) => (j.epoch = 'x'));
    expect(() => readCheckpoint(folder)).toThrow(/checkpoint\.json is not a valid dfd checkpoint: epoch: /);
    edit(folder, (j) => {
      j.epoch = 1e9;
      delete j.metaSha256;
    });
    expect(() => readCheckpoint(folder)).toThrow(/field epoch is 1000000000 but history holds 1 epoch/);
    edit(folder, (j) => (j.rng = 'abc'));
    expect(() => readCheckpoint(folder)).toThrow(/rng: /);
    // A store falls back to the older intact checkpoint and says why it skipped the edited one.
    const store = new FsCheckpointStore(mkdtempSync(join(tmpdir(), 'dfd-ckpt-')));
    store.save(meta(3), tensors());
    const newest = store.save({ ...meta(6), epoch: 2, history: [{ loss: 1 }, { loss: 0.5 }] }, tensors());
    edit(newest, (j) => (j.globalStep = 7));
    const loaded = store.loadNewestIntact();
    expect(loaded.checkpoint.meta.globalStep).toBe(3);
    expect(loaded.skipped[0]!.reason).toMatch(/metaSha256/);
  });

  it('the latest pointer may only name a checkpoint folder of its own run', () => {
    const other = mkdtempSync(join(tmpdir(), 'dfd-ckpt-other-'));
    new FsCheckpointStore(other).save({ ...meta(2), runId: 'other' }, tensors());
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const store = new FsCheckpointStore(dir);
    store.save(meta(3), tensors());
    const pointer = join(dir, 'checkpoints', 'latest');
    writeFileSync(pointer, `../../${other.split('/').pop()}/checkpoints/step-00000002\n`);
    expect(() => store.latestPath()).toThrow(CheckpointError);
    expect(() => store.latestPath()).toThrow(/latest names ".*step-00000002", not a checkpoint of this run/);
    const loaded = store.loadNewestIntact();
    expect(loaded.checkpoint.meta.runId).toBe('r');
    expect(loaded.path).toBe(join(dir, 'checkpoints', 'step-00000003'));
    expect(loaded.skipped[0]).toMatchObject({ path: pointer, reason: expect.stringMatching(/not a checkpoint of this run/) });
  });
});

describe('metaSha256 and plugin state of any JSON shape', () => {
  it('a checkpoint whose plugin state holds a Date, NaN, undefined and a typed array reads back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-ckpt-'));
    const folder = new FsCheckpointStore(dir).save(
      { ...meta(3), plugins: { p: { at: new Date(0), nan: Number.NaN, gone: undefined, list: [undefined, 1], buf: Float32Array.from([1, 2]) } } },
      new Map([['model/w', { shape: [1], dtype: 'float32' as const, data: Float32Array.from([1]) }]]),
    );
    expect(readCheckpoint(folder).meta.plugins).toEqual({ p: { at: '1970-01-01T00:00:00.000Z', nan: null, list: [null, 1], buf: { 0: 1, 1: 2 } } });
  });
});
