import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointFormatError, UnsafePickleError } from './errors.js';
import { parseSafetensors } from './safetensors.js';
import { parseTorchCheckpoint, readTorchArchive } from './torch.js';
import type { StateDict } from './tensor.js';

// Fixtures and their expected values come from tools/pytorch/make_import_fixtures.py (PyTorch).
const FIX = join(import.meta.dirname, '../../test/import-fixtures');
const read = (f: string): Uint8Array => new Uint8Array(readFileSync(join(FIX, f)));
interface Expected {
  shape: number[];
  dtype: string;
  contiguous: boolean;
  storage_offset: number;
  values: number[];
}
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')).tensors as Record<string, Expected>;

function checkAgainstTorch(sd: StateDict): void {
  expect([...sd.keys()]).toEqual(Object.keys(expected));
  for (const [key, exp] of Object.entries(expected)) {
    const got = sd.get(key)!;
    expect(got.shape, key).toEqual(exp.shape);
    expect(got.sourceDtype, key).toBe(exp.dtype);
    const values = Array.from(got.data as ArrayLike<number | bigint>, (v) => Number(v));
    if (['float32', 'float16', 'bfloat16', 'float64'].includes(exp.dtype)) {
      expect(got.dtype, key).toBe('float32');
      expect(got.data, key).toBeInstanceOf(Float32Array);
      // Exact: python's values are the same float32 numbers (halves/bfloat16 widen exactly; doubles round once).
      expect(values, key).toEqual(exp.values.map((v) => Math.fround(v)));
    } else {
      expect(values, key).toEqual(exp.values);
    }
  }
  expect(sd.get('bn.num_batches_tracked')!.data).toBeInstanceOf(BigInt64Array);
  expect(sd.get('bn.num_batches_tracked')!.dtype).toBe('int64');
  expect(sd.get('int32')!.data).toBeInstanceOf(Int32Array);
  expect(sd.get('mask')!.dtype).toBe('bool');
}

describe('parseTorchCheckpoint', () => {
  it('reads tiny.pth with exact values, shapes and dtypes, strided views materialised', () => {
    const sd = parseTorchCheckpoint(read('tiny.pth'), { name: 'tiny.pth' });
    checkAgainstTorch(sd);
    // The fixture really exercises non-contiguous and offset views.
    expect(expected.transposed!.contiguous).toBe(false);
    expect(expected.offset_view!.storage_offset).toBe(7);
    expect(expected.strided_step!.contiguous).toBe(false);
    // Transposed view of base: element [i][j] = base[j][i].
    const base = sd.get('base')!.data as Float32Array;
    const tr = sd.get('transposed')!.data as Float32Array;
    expect(tr[1 * 4 + 3]).toBe(base[3 * 5 + 1]);
    expect(sd.get('scalar')!.shape).toEqual([]);
    expect(Array.from(sd.get('scalar')!.data as Float32Array)).toEqual([2.75]);
  });

  it('unwraps {state_dict: {module.*}} with non-tensor extras (ints, floats, bytes, sets)', () => {
    const sd = parseTorchCheckpoint(read('wrapped.pth'), { name: 'wrapped.pth' });
    checkAgainstTorch(sd);
    const archive = readTorchArchive(read('wrapped.pth'), 'wrapped.pth');
    const root = archive.root as Map<string, unknown>;
    expect(root.get('epoch')).toBe(7);
    expect(root.get('best_acc')).toBe(0.625);
    expect(Array.from(root.get('note') as Uint8Array)).toEqual([98, 121, 116, 101, 115, 0, 255]);
    expect([...(root.get('tags') as Set<string>)].sort()).toEqual(['a', 'b']);
  });

  it('honours an explicit entry path and reports a wrong one with the keys that exist', () => {
    const sd = parseTorchCheckpoint(read('wrapped.pth'), { name: 'wrapped.pth', entry: 'state_dict', stripWrapperPrefixes: false });
    expect([...sd.keys()][0]).toBe('module.conv.weight');
    expect(() => parseTorchCheckpoint(read('wrapped.pth'), { name: 'wrapped.pth', entry: 'model' })).toThrow(
      /checkpoint 'wrapped\.pth': entry 'model': no key 'model' at '<root>' \(keys: state_dict, epoch, best_acc, arch, note, tags\)/,
    );
  });

  for (const [file, global] of [
    ['malicious_os_system.pth', 'os.system'],
    ['malicious_eval.pth', 'builtins.eval'],
  ] as const) {
    it(`refuses ${file} (global ${global}) without side effects`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'dfd-pwn-'));
      const marker = join(dir, 'marker');
      const before = process.env.DFD_MARKER;
      // The payload would `touch $DFD_MARKER` (the fixture script checked torch.load does so).
      process.env.DFD_MARKER = marker;
      try {
        let err: unknown;
        try {
          parseTorchCheckpoint(read(file), { name: file });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(UnsafePickleError);
        expect((err as UnsafePickleError).code).toBe('E_UNSAFE_PICKLE');
        expect((err as UnsafePickleError).global).toBe(global);
        expect((err as Error).message).toContain(
          `checkpoint '${file}' references global '${global}', which is not allowed: only tensor storages and plain containers are accepted`,
        );
        expect(existsSync(marker)).toBe(false);
        expect(existsSync('/tmp/dfd-import-pwned')).toBe(false);
      } finally {
        if (before === undefined) delete process.env.DFD_MARKER;
        else process.env.DFD_MARKER = before;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('gives typed errors for truncated, non-zip and legacy files', () => {
    const tiny = read('tiny.pth');
    expect(() => parseTorchCheckpoint(tiny.subarray(0, 300), { name: 'cut.pth' })).toThrow(CheckpointFormatError);
    expect(() => parseTorchCheckpoint(new TextEncoder().encode('hello'), { name: 'x.pth' })).toThrow(/checkpoint 'x\.pth': not a zip archive/);
    expect(() => parseTorchCheckpoint(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a]), { name: 'old.pth' })).toThrow(/legacy \(non-zip\) torch\.save format/);
  });
});

describe('parseSafetensors', () => {
  it('reads tiny.safetensors with exact values, shapes and dtypes', () => {
    const sd = parseSafetensors(read('tiny.safetensors'), { name: 'tiny.safetensors' });
    checkAgainstTorch(sd);
  });

  it('rejects a header that points outside the data with the tensor name', () => {
    const bytes = read('tiny.safetensors').slice();
    const cut = bytes.subarray(0, bytes.length - 4);
    expect(() => parseSafetensors(cut, { name: 'cut.safetensors' })).toThrow(/checkpoint 'cut\.safetensors': tensor 'prelu.weight': data_offsets \[\d+, \d+\] lie outside/);
    expect(() => parseSafetensors(Uint8Array.from([255, 255, 0, 0, 0, 0, 0, 0, 1]), { name: 'bad.safetensors' })).toThrow(/header length 65535 exceeds the file/);
  });
});
