import { describe, expect, it } from 'vitest';
import { CheckpointFormatError, UnsafePickleError } from './errors.js';
import { PyTuple, unpickle } from './pickle.js';
import { StorageRef, TORCH_ALLOWED_GLOBALS } from './torch.js';

// Hand-assembled pickles (opcode bytes from CPython's Lib/pickletools.py), so every case is
// independent of this reader and of python.
const enc = new TextEncoder();
function p(...parts: Array<string | number[] | Uint8Array>): Uint8Array {
  const chunks = parts.map((x) => (typeof x === 'string' ? enc.encode(x) : Uint8Array.from(x)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
const su = (s: string): number[] => [0x8c, enc.encode(s).length, ...enc.encode(s)]; // SHORT_BINUNICODE
const run = (bytes: Uint8Array): unknown => unpickle(bytes, { file: 'crafted.pth', globals: TORCH_ALLOWED_GLOBALS });

describe('restricted unpickler', () => {
  it('builds plain containers: dict, list, tuple, set, ints, floats, strings, None/bools', () => {
    // {'a': [1, -2, 300, 70000, 1.5], 'b': (None, True, False), 'c': {'x'}, 'big': 2**70}
    const bytes = p(
      [0x80, 0x04, 0x7d, 0x28], // PROTO 4, EMPTY_DICT, MARK
      su('a'),
      [0x5d, 0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x4d, 0x2c, 0x01, 0x4a, 0x70, 0x11, 0x01, 0x00],
      [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x65], // BINFLOAT 1.5, APPENDS
      su('b'),
      [0x4e, 0x88, 0x89, 0x87], // NONE NEWTRUE NEWFALSE TUPLE3
      su('c'),
      [0x8f, 0x28],
      su('x'),
      [0x90], // EMPTY_SET MARK 'x' ADDITEMS
      su('big'),
      [0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x40], // LONG1 2**70
      [0x75, 0x2e], // SETITEMS STOP
    );
    const v = run(bytes) as Map<string, unknown>;
    expect(v.get('a')).toEqual([1, -2, 300, 70000, 1.5]);
    expect(v.get('b')).toBeInstanceOf(PyTuple);
    expect([...(v.get('b') as PyTuple)]).toEqual([null, true, false]);
    expect([...(v.get('c') as Set<string>)]).toEqual(['x']);
    expect(v.get('big')).toBe(2n ** 70n);
  });

  it('memoises (BINPUT/BINGET, MEMOIZE) so shared objects stay shared', () => {
    // l = []; [l, l] via MEMOIZE + BINGET 0
    const v = run(p([0x80, 0x04, 0x5d, 0x94, 0x68, 0x00, 0x86, 0x2e])) as unknown[];
    expect(v[0]).toBe(v[1]);
  });

  it('refuses every global outside the allow-list at GLOBAL/STACK_GLOBAL/INST time', () => {
    const cases: Array<[Uint8Array, string]> = [
      [p([0x80, 0x02], 'cos\nsystem\n', [0x8c, 2], 'ls', [0x85, 0x52, 0x2e]), 'os.system'],
      [p([0x80, 0x02], 'cposix\nsystem\n', [0x2e]), 'posix.system'],
      [p([0x80, 0x04], su('builtins'), su('getattr'), [0x93, 0x2e]), 'builtins.getattr'],
      [p([0x80, 0x02], 'c__builtin__\neval\n', [0x2e]), 'builtins.eval'],
      [p([0x28], 'isubprocess\nPopen\n', [0x2e]), 'subprocess.Popen'],
      [p([0x80, 0x02], 'ctorch\nload\n', [0x2e]), 'torch.load'],
      [p([0x80, 0x02], 'ctorch._utils\n_rebuild_tensor_v2X\n', [0x2e]), 'torch._utils._rebuild_tensor_v2X'],
    ];
    for (const [bytes, global] of cases) {
      expect(() => run(bytes), global).toThrow(UnsafePickleError);
      expect(() => run(bytes), global).toThrow(`checkpoint 'crafted.pth' references global '${global}', which is not allowed`);
    }
    // Extension codes resolve globals through copyreg's registry: refused too.
    expect(() => run(p([0x80, 0x02, 0x82, 0x01, 0x2e]))).toThrow(UnsafePickleError);
  });

  it('never calls allowed-but-not-callable globals or non-globals', () => {
    // torch.FloatStorage(()) and 'str'(()) via REDUCE
    expect(() => run(p([0x80, 0x02], 'ctorch\nFloatStorage\n', [0x29, 0x52, 0x2e]))).toThrow(/'torch\.FloatStorage' is not callable here/);
    expect(() => run(p([0x80, 0x02], su('x'), [0x29, 0x52, 0x2e]))).toThrow(/REDUCE on a non-global \(string\)/);
  });

  it('reports malformed input as CheckpointFormatError with the byte position', () => {
    expect(() => run(p([0x80, 0x02, 0x7d]))).toThrow(/pickle byte 3: truncated/);
    expect(() => run(p([0x80, 0x02, 0xff]))).toThrow(/pickle byte 2: unknown opcode 0xff/);
    expect(() => run(p([0x80, 0x02, 0x68, 0x05, 0x2e]))).toThrow(/memo key 5 was never stored/);
    expect(() => run(p([0x80, 0x02, 0x74, 0x2e]))).toThrow(CheckpointFormatError);
    expect(() => run(p([0x80, 0x02, 0x51, 0x2e]))).toThrow(/stack underflow/);
  });

  it('rejects absurd tensor sizes before allocating', () => {
    // _rebuild_tensor_v2(<storage>, 0, (2**20, 2**20), (0, 0), False, OrderedDict())
    const pid = p([0x28], su('storage'), 'ctorch\nFloatStorage\n', su('0'), su('cpu'), [0x4b, 0x01, 0x74]);
    const bytes = p(
      [0x80, 0x02],
      'ctorch._utils\n_rebuild_tensor_v2\n',
      [0x28],
      pid,
      [0x51, 0x4b, 0x00],
      [0x4a, 0, 0, 0x10, 0, 0x4a, 0, 0, 0x10, 0, 0x86, 0x4b, 0, 0x4b, 0, 0x86, 0x89, 0x4e, 0x74, 0x52, 0x2e],
    );
    const huge = { file: 'huge.pth', globals: TORCH_ALLOWED_GLOBALS, persistentLoad: () => new StorageRef('0', 'float32', 'cpu', 1) };
    expect(() => unpickle(bytes, huge)).toThrow(/checkpoint 'huge\.pth': tensor of size \[1048576,1048576\] has more than 268435456 elements/);
    const notStorage = { ...huge, persistentLoad: () => 'storage?' };
    expect(() => unpickle(bytes, notStorage)).toThrow(/tensor rebuild without a storage \(string\)/);
  });
});
