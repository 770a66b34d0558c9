/*
 * The thread pool of dfd's wasm module (src/wasm-module.ts; its functions: the Winograd
 * transforms and GEMMs of src/winograd.ts, and the dW, PReLU-gradient and batch-norm kernels in
 * src/kernels/) on tfjs's threaded wasm build.
 *
 * XNNPACK has its own thread pool, but dfd's module functions would run on the calling thread
 * only, with the other cores idle. A pool is `threads - 1` workers, each instantiating dfd's
 * module against the backend's shared memory; a call is split into ranges (images, rows, tile
 * blocks, GEMM slices) between the caller and the workers. The caller posts a job in a shared control block
 * (Atomics.notify), does its own share, then waits for the workers (Atomics.wait). Blocking waits
 * are allowed on Node's main thread, not on a browser's, so only Node builds a pool (wasm-node.ts
 * supplies the worker constructor); elsewhere the module's functions stay on the calling thread.
 */

/** The functions a job can run, by index in the control block. */
export const TRANSFORM_FUNCTIONS = ['input4', 'output4', 'input6', 'output6', 'dw', 'preluGrad', 'batchNorm', 'gemm', 'fused4', 'fused6', 'filter4', 'filter6'] as const;
export type TransformName = (typeof TRANSFORM_FUNCTIONS)[number];

/** A call: 7 arguments, then the image range [n0, n1) and the part (0: the caller, w + 1: worker w). */
export type TransformFn = (a0: number, a1: number, a2: number, a3: number, a4: number, a5: number, a6: number, n0: number, n1: number, part: number) => void;

/** A call's image (or row) range and the part it sums into: [n0, n1, part]. */
export type Range = readonly [number, number, number];

/** [0, n) split into `parts` contiguous ranges, part k the k-th. */
export function splitRanges(n: number, parts: number): Range[] {
  const bound = (k: number): number => Math.round((k * n) / parts);
  return Array.from({ length: parts }, (_, k) => [bound(k), bound(k + 1), k] as const);
}

/** Calls `fn` with its 7 arguments and one range. */
export function callRange(fn: TransformFn, args: readonly number[], [n0, n1, part]: Range): void {
  fn(args[0]!, args[1]!, args[2]!, args[3]!, args[4]!, args[5]!, args[6]!, n0, n1, part);
}

/** A started worker, as the pool needs it (Node's worker_threads Worker fits). */
export interface PoolWorker {
  on(event: 'message' | 'error' | 'exit', listener: (value: unknown) => void): unknown;
  unref(): void;
  terminate(): unknown;
}
/** Starts a worker running `source` (CommonJS, `require` and `workerData` available) with `workerData`. */
export type SpawnWorker = (source: string, workerData: Record<string, unknown>) => PoolWorker;

// Control block (Int32Array over a SharedArrayBuffer).
const SEQ = 0; // job generation; workers wait for it to change
const DONE = 1; // workers finished with the current job
const FN = 2; // index into TRANSFORM_FUNCTIONS, -1: exit
const FAILED = 3; // a worker's call threw
const ARGS = 4; // 7 arguments
const RANGES = 16; // [n0, n1, part] per worker
const MAX_WORKERS = 64;

/** Runs in each worker (Node worker_threads, `eval: true`). */
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { memory, bytes, control, index, names } = workerData;
const c = new Int32Array(control);
const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
parentPort.postMessage('ready');
let seq = 0;
for (;;) {
  Atomics.wait(c, ${SEQ}, seq);
  seq = Atomics.load(c, ${SEQ});
  const fn = Atomics.load(c, ${FN});
  if (fn < 0) break;
  try {
    const n0 = c[${RANGES} + 3 * index], n1 = c[${RANGES + 1} + 3 * index], part = c[${RANGES + 2} + 3 * index];
    if (n1 > n0) exports[names[fn]](c[${ARGS}], c[${ARGS + 1}], c[${ARGS + 2}], c[${ARGS + 3}], c[${ARGS + 4}], c[${ARGS + 5}], c[${ARGS + 6}], n0, n1, part);
  } catch (e) {
    Atomics.store(c, ${FAILED}, 1);
  }
  Atomics.add(c, ${DONE}, 1);
  Atomics.notify(c, ${DONE});
}
`;

/** How long the caller waits for a worker's share before giving up on the pool. */
const STALL_MS = 60_000;

/** A pool of transform workers over one wasm memory. */
export class TransformPool {
  private readonly control: Int32Array;
  private closed = false;

  private constructor(
    private readonly workers: PoolWorker[],
    control: SharedArrayBuffer,
  ) {
    this.control = new Int32Array(control);
  }

  /**
   * Starts `threads - 1` workers with the transform module `bytes` over the shared `memory`;
   * resolves once each has instantiated it. Rejects (and stops what started) when one fails.
   */
  static async start(threads: number, memory: WebAssembly.Memory, bytes: Uint8Array, spawn: SpawnWorker): Promise<TransformPool> {
    const n = Math.min(Math.max(0, Math.floor(threads) - 1), MAX_WORKERS);
    const control = new SharedArrayBuffer(4 * (RANGES + 3 * MAX_WORKERS));
    const workers: PoolWorker[] = [];
    try {
      await Promise.all(
        Array.from({ length: n }, (_, index) => {
          const w = spawn(WORKER_SOURCE, { memory, bytes, control, index, names: [...TRANSFORM_FUNCTIONS] });
          workers.push(w);
          return new Promise<void>((resolve, reject) => {
            w.on('message', () => resolve());
            w.on('error', (e) => reject(e instanceof Error ? e : new Error(String(e))));
            w.on('exit', (code) => reject(new Error(`Winograd transform worker ${index} exited (code ${String(code)}) before it was ready`)));
          });
        }),
      );
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw e;
    }
    for (const w of workers) w.unref();
    return new TransformPool(workers, control);
  }

  /** Threads a transform runs on: the caller and the workers. */
  get threads(): number {
    return this.closed ? 1 : this.workers.length + 1;
  }

  /** Parts a job over `n` images is split into: part k (0: the caller) takes a contiguous range. */
  parts(n: number): number {
    return Math.max(1, Math.min(this.threads, n));
  }

  /**
   * Runs `fn` (TRANSFORM_FUNCTIONS[name], `own` being the caller's instance of it) once per range
   * [n0, n1, part], the ranges spread over the threads in rounds (the caller takes the first of
   * each round); a round ends when all its calls have.
   */
  runRanges(name: TransformName, own: TransformFn, args: readonly number[], ranges: readonly Range[]): void {
    const call = (r: Range): void => callRange(own, args, r);
    const threads = this.threads;
    if (threads <= 1 || ranges.length <= 1) {
      ranges.forEach(call);
      return;
    }
    const c = this.control;
    for (let i = 0; i < 7; i++) c[ARGS + i] = args[i]!;
    c[FN] = TRANSFORM_FUNCTIONS.indexOf(name);
    for (let first = 0; first < ranges.length; first += threads) {
      for (let w = 0; w < this.workers.length; w++) {
        // Worker w takes the round's range w + 1 (the caller range 0); beyond the last: empty.
        const r = ranges[first + w + 1];
        c[RANGES + 3 * w] = r ? r[0] : 0;
        c[RANGES + 3 * w + 1] = r ? r[1] : 0;
        c[RANGES + 3 * w + 2] = r ? r[2] : 0;
      }
      Atomics.store(c, DONE, 0);
      Atomics.store(c, FAILED, 0);
      Atomics.add(c, SEQ, 1);
      Atomics.notify(c, SEQ);
      try {
        call(ranges[first]!);
      } finally {
        this.join();
      }
      if (Atomics.load(c, FAILED) !== 0) throw new Error(`Winograd ${name}: a transform worker failed`);
    }
  }

  /** Waits until every worker has finished the current job. */
  private join(): void {
    const c = this.control;
    const want = this.workers.length;
    for (;;) {
      const done = Atomics.load(c, DONE);
      if (done >= want) return;
      if (Atomics.wait(c, DONE, done, STALL_MS) === 'timed-out' && Atomics.load(c, DONE) === done) {
        this.close();
        throw new Error(`Winograd transform workers did not finish within ${STALL_MS / 1000} s; the pool is closed (transforms now run on the calling thread)`);
      }
    }
  }

  /** Stops the workers; later transforms run on the calling thread. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.control, FN, -1);
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
    for (const w of this.workers) void w.terminate();
  }
}
