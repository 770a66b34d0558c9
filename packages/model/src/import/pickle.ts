import { CheckpointFormatError, UnsafePickleError } from './errors.js';

/**
 * A restricted pickle reader. It never resolves a real function: a GLOBAL becomes a symbolic
 * `PyGlobal` only if it is on the allow-list (anything else throws `UnsafePickleError` at the
 * GLOBAL opcode, before any REDUCE could use it), and REDUCE/NEWOBJ dispatch to a fixed table of
 * small pure-JS builders (containers, tensor rebuilds). So a checkpoint cannot run code, however
 * it was crafted: the worst it can do is fail to parse.
 */

/** A Python global the allow-list accepted, kept as a name (never a callable). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  /** `module.name`, e.g. `torch.FloatStorage`. */
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python tuple (kept apart from lists so a caller can tell them apart). */
export class PyTuple extends Array<unknown> {}

/** An instance of an allow-listed class built by NEWOBJ/REDUCE that has no closer JS form. */
export class PyObject {
  state: unknown = undefined;
  constructor(
    readonly cls: PyGlobal,
    readonly args: unknown[],
  ) {}
}

/** Builds the value of `cls(*args)` for an allow-listed global. */
export type GlobalBuilder = (args: unknown[], file: string) => unknown;

/** Options of `unpickle`. */
export interface UnpickleOptions {
  /** Name used in error messages (the checkpoint's file name). */
  file: string;
  /** Allowed globals (`module.name`) and how to build a call to each; `null` = value-only (not callable). */
  globals: ReadonlyMap<string, GlobalBuilder | null>;
  /** Resolves a persistent id (torch's storage references); absent = persistent ids refused. */
  persistentLoad?: (pid: unknown) => unknown;
}

const MODULE_ALIASES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function intFromLE(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Run the restricted pickle VM over `data` and return the unpickled root object. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions): unknown {
  const { file } = opts;
  const fail = (pos: number, msg: string): never => {
    throw new CheckpointFormatError(file, `pickle byte ${pos}: ${msg}`);
  };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number): void => {
    if (pos + n > data.length) fail(pos, `truncated: needs ${n} more bytes, file has ${data.length - pos}`);
  };
  const u8 = (): number => {
    need(1);
    return data[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) fail(pos - 8, `length ${v} exceeds the file`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail(pos, 'unterminated text line');
    const s = latin1(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  // Reads `stack` at call time: arguments such as popMark() may swap the stack first.
  const push = (v: unknown): void => {
    stack.push(v);
  };
  const pop = (at: number): unknown => {
    if (stack.length === 0) fail(at, 'stack underflow');
    return stack.pop();
  };
  const top = (at: number): unknown => {
    if (stack.length === 0) fail(at, 'stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (at: number): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail(at, 'no MARK on the stack');
    stack = prev!;
    return items;
  };
  const findClass = (module: string, name: string): PyGlobal => {
    const mod = MODULE_ALIASES[module] ?? module;
    const q = `${mod}.${name}`;
    if (!opts.globals.has(q)) throw new UnsafePickleError(file, q);
    return new PyGlobal(mod, name);
  };
  const call = (at: number, fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PyGlobal)) return fail(at, `REDUCE on a non-global (${typeName(fn)})`);
    if (!Array.isArray(args)) return fail(at, `REDUCE arguments are not a tuple (${typeName(args)})`);
    const builder = opts.globals.get(fn.qualified);
    if (!builder) return fail(at, `'${fn.qualified}' is not callable here`);
    return builder(args, file);
  };
  const setItems = (at: number, target: unknown, kv: unknown[]): void => {
    if (!(target instanceof Map)) fail(at, `SETITEM(S) on a ${typeName(target)}`);
    if (kv.length % 2 !== 0) fail(at, 'SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const appendItems = (at: number, target: unknown, items: unknown[]): void => {
    if (Array.isArray(target) && !(target instanceof PyTuple)) for (const it of items) target.push(it);
    else if (target instanceof Set) for (const it of items) target.add(it);
    else fail(at, `APPEND(S) on a ${typeName(target)}`);
  };
  const tuple = (items: unknown[]): PyTuple => {
    const t = new PyTuple();
    for (const it of items) t.push(it);
    return t;
  };

  while (true) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(at, 'pickle protocol newer than 5');
        break;
      case 0x95: // FRAME: framing is only a read-ahead hint
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || metastack.length !== 0) fail(at, `STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark(at);
        break;
      case 0x31: // POP_MARK
        popMark(at);
        break;
      case 0x32: // DUP
        push(top(at));
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(intFromLE(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail(at, 'negative LONG4 length');
        push(intFromLE(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (text): also encodes booleans as 00/01
        const s = line();
        if (s === '00') push(false);
        else if (s === '01') push(true);
        else {
          const v = Number.parseInt(s, 10);
          if (!Number.isFinite(v)) fail(at, `bad INT '${s}'`);
          push(v);
        }
        break;
      }
      case 0x4c: {
        // LONG (text)
        const s = line().replace(/L$/, '');
        if (!/^-?\d+$/.test(s)) fail(at, `bad LONG '${s}'`);
        const v = BigInt(s);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const v = Number(line());
        push(v);
        break;
      }
      case 0x58: // BINUNICODE
        push(utf8.decode(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8.decode(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8.decode(bytes(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text; ASCII suffices for keys)
        push(line());
        break;
      case 0x54: {
        // BINSTRING (py2 str): decoded as latin-1 like pickle's default 'ASCII'/'latin1'
        const n = i32();
        if (n < 0) fail(at, 'negative BINSTRING length');
        push(latin1(bytes(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        push(latin1(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(bytes(u64()).slice());
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x64: {
        // DICT
        const items = popMark(at);
        const m = new Map();
        setItems(at, m, items);
        push(m);
        break;
      }
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push([...popMark(at)]);
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x74: // TUPLE
        push(tuple(popMark(at)));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop(at)]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop(at);
        const a = pop(at);
        push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop(at);
        const b = pop(at);
        const a = pop(at);
        push(tuple([a, b, c]));
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark(at);
        appendItems(at, top(at), items);
        break;
      }
      case 0x91: // FROZENSET
        push(new Set(popMark(at)));
        break;
      case 0x73: {
        // SETITEM
        const v = pop(at);
        const k = pop(at);
        setItems(at, top(at), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark(at);
        setItems(at, top(at), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop(at);
        appendItems(at, top(at), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark(at);
        appendItems(at, top(at), items);
        break;
      }
      case 0x67: // GET
        getMemo(Number.parseInt(line(), 10));
        break;
      case 0x68: // BINGET
        getMemo(u8());
        break;
      case 0x6a: // LONG_BINGET
        getMemo(u32());
        break;
      case 0x70: // PUT
        memo.set(Number.parseInt(line(), 10), top(at));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top(at));
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top(at));
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top(at));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n": checked against the allow-list right here
        const module = line();
        const name = line();
        push(findClass(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(at);
        const module = pop(at);
        if (typeof module !== 'string' || typeof name !== 'string') fail(at, 'STACK_GLOBAL needs two strings');
        push(findClass(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop(at);
        const fn = pop(at);
        push(call(at, fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) on an allow-listed class only
        const args = pop(at);
        const cls = pop(at);
        push(call(at, cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop(at);
        const args = pop(at);
        const cls = pop(at);
        if (kwargs instanceof Map && kwargs.size > 0) fail(at, 'NEWOBJ_EX with keyword arguments');
        push(call(at, cls, args));
        break;
      }
      case 0x62: {
        // BUILD: state goes into a side slot; no __setstate__ is ever called
        const state = pop(at);
        const obj = top(at);
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof Map || (typeof obj === 'object' && obj !== null && 'buildState' in obj)) {
          (obj as { buildState?: unknown }).buildState = state;
        } else fail(at, `BUILD on a ${typeName(obj)}`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop(at);
        if (!opts.persistentLoad) fail(at, 'persistent id in a pickle that may not have any');
        push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail(at, 'persistent id in a pickle that may not have any');
        push(opts.persistentLoad!(pid));
        break;
      }
      case 0x69: {
        // INST (protocol 0 class instantiation): the class is checked like GLOBAL, then refused
        const module = line();
        const name = line();
        const cls = findClass(module, name);
        push(call(at, cls, tuple(popMark(at))));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark(at);
        const cls = items.shift();
        push(call(at, cls, tuple(items)));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84:
        // EXT1/2/4 resolve globals through the copyreg extension registry: never allowed.
        throw new UnsafePickleError(file, `copyreg extension code ${op === 0x82 ? u8() : op === 0x83 ? u16() : i32()}`);
      case 0x97:
      case 0x98:
        return fail(at, 'out-of-band buffers (pickle protocol 5) are not supported');
      default:
        return fail(at, `unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }

  function getMemo(i: number): void {
    if (!memo.has(i)) fail(pos, `memo key ${i} was never stored`);
    push(memo.get(i));
  }
}

/** A short type name for error messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyTuple) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  if (v instanceof PyObject) return v.cls.qualified;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}
