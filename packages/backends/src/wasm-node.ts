import type { PoolWorker, SpawnWorker } from './wasm-pool.js';
import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { BackendUnavailableError } from './errors.js';
import { replaceEmscriptenProcessHandlers } from './process-errors.js';

/*
 * The tfjs wasm backend in Node, loaded by dfd: multi-threaded, and with XNNPACK failures caught.
 *
 * XNNPACK failures: when XNNPACK cannot create or set up an operator (status 6 = out of memory,
 * when the 4 GB wasm heap is full), tfjs only prints "XNN status for ... is not successful" and
 * the kernel returns an output it never wrote: training continues on garbage. dfd gives the
 * Emscripten module print hooks that record these lines ({@link noteWasmOutput}), and
 * {@link guardWasmKernels} makes the kernel that printed them throw {@link WasmKernelFailure};
 * the trainer then ends the run without applying the step.
 *
 * Threads:
 * tfjs-backend-wasm ships a threaded SIMD build whose Emscripten runtime supports Node
 * (pthreads on worker_threads), but tfjs never selects it there (WASM_HAS_MULTITHREAD_SUPPORT is
 * hard-wired to false in Node, tfjs#3830) and its loader hands the pthread worker script over as
 * a blob: URL, which Node's Worker cannot start. This module loads that build itself:
 *
 * - the pthread worker script (tfjs inlines it as a string) is written once to the OS temp folder
 *   and handed to Emscripten by path;
 * - Emscripten's Node pthreads call `new Worker(file)`; a global `Worker` that starts plain Node
 *   workers (`execArgv: []`) keeps loaders and flags of the parent (tsx, --conditions, ...) out
 *   of the pthread workers;
 * - tfjs caps XNNPACK's thread pool at `emscripten_num_logical_cores() / 2` (computed once, when
 *   the module starts), which Emscripten answers from `os.cpus().length`; while the module
 *   starts, os.cpus reports enough CPUs for the requested pool, and is restored right after;
 * - the worker threads are unref'd so that they never keep a finished process alive.
 *
 * Only imported (dynamically) by useBackend in Node; never bundled for the browser path.
 */

interface EmscriptenWorker {
  unref(): void;
}

interface WasmModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  /** Emscripten's pthread pool (threaded build only). */
  PThread?: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] };
  tfjs?: unknown;
}

type NodeRequire = (id: string) => unknown;

/** What {@link registerNodeWasmBackend} did. */
export interface NodeWasm {
  /** Threads XNNPACK runs on (the caller's thread included). */
  threads: number;
  /** Which tfjs build runs. */
  build: 'threaded-simd' | 'simd' | 'plain';
}

const XNN_STATUS = ['success', 'uninitialized', 'invalid parameter', 'invalid state', 'unsupported parameter', 'unsupported hardware', 'out of memory'];
const failures: string[] = [];

/** XNNPACK failures since the last call (e.g. "xnn_create_convolution2d_nhwc_f32: status 6 (out of memory)"), and forgets them. */
export function takeWasmFailures(): string[] {
  return failures.splice(0, failures.length);
}

/** A wasm kernel ran although XNNPACK failed inside it (its output was never written). */
export class WasmKernelFailure extends DfdError {
  constructor(
    readonly kernel: string,
    readonly failures: string[],
  ) {
    const oom = failures.some((f) => f.includes('out of memory'));
    super(
      'E_WASM_XNNPACK',
      `wasm kernel ${kernel}: XNNPACK failed (${failures.slice(0, 3).join('; ')})` +
        (oom ? '; the 4 GB wasm heap is full: use a smaller batch (or micro-batches, --micro-batch 32)' : ''),
    );
  }
}

let guarded = false;

/**
 * Wraps every kernel registered for the wasm backend so that an XNNPACK failure recorded while it
 * ran throws {@link WasmKernelFailure} right after it (its output is freed), instead of letting
 * the computation continue on garbage (which also runs very slowly: wasm has no flush-to-zero).
 * Kernels registered later need another call (registerWasmTrainingKernels makes it); idempotent
 * per kernel; a guarded kernelFunc has the original as `dfdInner`.
 */
export function guardWasmKernels(): void {
  for (const config of tf.getKernelsForBackend('wasm')) {
    const inner = config.kernelFunc as tf.KernelFunc & { dfdInner?: tf.KernelFunc };
    if (inner.dfdInner) continue;
    const kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => {
      const out = inner(args);
      if (failures.length > 0) {
        const outs = Array.isArray(out) ? out : [out];
        for (const o of outs) (args.backend as tf.KernelBackend).disposeData((o as tf.TensorInfo).dataId);
        throw new WasmKernelFailure(config.kernelName, takeWasmFailures());
      }
      return out;
    }) as tf.KernelFunc & { dfdInner?: tf.KernelFunc };
    kernelFunc.dfdInner = inner;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc });
  }
  guarded = true;
}

/** Whether {@link guardWasmKernels} ran. */
export function wasmKernelsGuarded(): boolean {
  return guarded;
}

/**
 * What dfd's print hooks do with each line the wasm module prints: an XNNPACK failure ("XNN
 * status for <op> is not successful. Got status <n>") is recorded for {@link takeWasmFailures}
 * and goes to stderr; anything else goes to `fd` unchanged. Returns true for a failure line.
 */
export function noteWasmOutput(line: string, fd: 1 | 2 = 1): boolean {
  const m = /XNN status for (\w+) is not successful\. Got status (\d+)/.exec(line);
  if (m) {
    const code = Number(m[2]);
    failures.push(`${m[1]!}: status ${code} (${XNN_STATUS[code] ?? 'unknown'})`);
  }
  (m || fd === 2 ? process.stderr : process.stdout).write(line + '\n');
  return m != null;
}

function printHooks(): { print(line: string): void; printErr(line: string): void } {
  return { print: (line) => void noteWasmOutput(line, 1), printErr: (line) => void noteWasmOutput(line, 2) };
}

async function nodeImport<T>(specifier: string): Promise<T> {
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as T;
}

let registered: NodeWasm | null = null;

/** XNNPACK threads of the wasm backend dfd registered (1 when it did not). */
export function nodeWasmThreads(): number {
  return registered?.threads ?? 1;
}

type WasmPackage = { BackendWasm: new (m: never) => tf.KernelBackend; setThreadsCount(n: number): void };

/**
 * Registers the tfjs backend `wasm` (replacing the registration `@tensorflow/tfjs-backend-wasm`
 * made on import) as tfjs's threaded SIMD build with `threads` XNNPACK threads when threads > 1,
 * else its single-threaded SIMD (or plain) build; both with dfd's print hooks. Call before the
 * wasm backend is first initialised; kernels registered for `wasm` (tfjs's and dfd's) apply
 * unchanged. Returns what will run.
 */
export async function registerNodeWasmBackend(threads: number, simd: boolean, wasmModule: WasmPackage, wasmPaths?: WasmPaths): Promise<NodeWasm> {
  if (registered) return registered;
  const { createRequire } = await nodeImport<{ createRequire(url: string): ResolvingRequire }>('node:module');
  const require = createRequire(import.meta.url);
  const threaded = threads > 1 && simd;
  const module = threaded ? await loadThreaded(require, threads, wasmPaths) : await loadSingle(require, simd, wasmPaths);
  // Emscripten's process handlers print the whole minified module before any uncaught error (src/process-errors.ts).
  replaceEmscriptenProcessHandlers();
  // The same C entry points tfjs's own loader wraps (backend_wasm.js init()).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  wasmModule.setThreadsCount(threaded ? threads : 1);
  // Not initialised yet (the caller checks): drop tfjs's factory so ours registers.
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    () => {
      const backend = new wasmModule.BackendWasm(module as never);
      // Pthread workers (threaded build only) must not keep a finished process alive.
      for (const w of [...(module.PThread?.runningWorkers ?? []), ...(module.PThread?.unusedWorkers ?? [])]) w.unref();
      return backend;
    },
    2,
  );
  registered = threaded ? { threads, build: 'threaded-simd' } : { threads: 1, build: simd ? 'simd' : 'plain' };
  return registered;
}

type ResolvingRequire = NodeRequire & { resolve(id: string): string };
type ModuleFactory = (config: Record<string, unknown>) => Promise<WasmModule>;

/** `useBackend('wasm', {wasmPaths})`: tfjs's folder prefix, or a map from `.wasm` file name to path. */
export type WasmPaths = string | Record<string, string>;

/**
 * Where the `.wasm` binary `file` (e.g. `tfjs-backend-wasm-threaded-simd.wasm`) is read from:
 * the package's own copy, or what `wasmPaths` says, in tfjs's setWasmPaths() form (a folder
 * prefix, a `file:` URL included, or a map from file name to path; a map without `file` keeps the
 * package's copy). Throws BackendUnavailableError naming the path when a given path does not
 * exist.
 */
async function locateWasm(file: string, packaged: string, wasmPaths: WasmPaths | undefined): Promise<string> {
  if (wasmPaths == null) return packaged;
  const given = typeof wasmPaths === 'string' ? wasmPaths : wasmPaths[file];
  if (given == null) return packaged;
  const { fileURLToPath } = await nodeImport<{ fileURLToPath(u: string): string }>('node:url');
  const { existsSync, statSync } = await nodeImport<{ existsSync(p: string): boolean; statSync(p: string): { isDirectory(): boolean } }>('node:fs');
  const { join } = await nodeImport<{ join(...p: string[]): string }>('node:path');
  let at = given.startsWith('file:') ? fileURLToPath(given) : given;
  if (typeof wasmPaths === 'string') at = at.endsWith('/') || (existsSync(at) && statSync(at).isDirectory()) ? join(at, file) : at + file;
  if (!existsSync(at)) {
    throw new BackendUnavailableError(
      'wasm',
      `backend 'wasm': wasmPaths points at ${at}, which does not exist; give the folder that holds ${file} ` +
        `(node_modules/@tensorflow/tfjs-backend-wasm/dist/ has them all) or leave wasmPaths out in Node`,
    );
  }
  return at;
}

/** tfjs's single-threaded build (`tfjs-backend-wasm.js` serves the SIMD and the plain binary). */
async function loadSingle(require: ResolvingRequire, simd: boolean, wasmPaths?: WasmPaths): Promise<WasmModule> {
  const jsPath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.js');
  const file = simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  const wasmPath = await locateWasm(file, jsPath.replace(/tfjs-backend-wasm\.js$/, file), wasmPaths);
  const factory = require(jsPath) as ModuleFactory;
  return factory({ locateFile: (p: string, prefix: string) => (p.endsWith('.wasm') ? wasmPath : prefix + p), ...printHooks() });
}

/** tfjs's threaded SIMD build, its pthread pool sized for `threads` (see the header comment). */
async function loadThreaded(require: ResolvingRequire, threads: number, wasmPaths?: WasmPaths): Promise<WasmModule> {
  const fs = await nodeImport<{ existsSync(p: string): boolean; writeFileSync(p: string, d: string): void; renameSync(a: string, b: string): void; mkdirSync(p: string, o: object): void }>('node:fs');
  const osNs = await nodeImport<{ default: { tmpdir(): string; cpus(): unknown[] } }>('node:os');
  // Emscripten calls require('os').cpus(): patch the module object, not the ESM namespace.
  const os = osNs.default;
  const path = await nodeImport<{ join(...p: string[]): string; dirname(p: string): string }>('node:path');
  const { Worker: NodeWorker } = await nodeImport<{ Worker: new (f: string, o?: Record<string, unknown>) => object }>('node:worker_threads');

  const jsPath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const wasmPath = await locateWasm('tfjs-backend-wasm-threaded-simd.wasm', jsPath.replace(/\.js$/, '.wasm'), wasmPaths);
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };
  // tfjs escapes newlines the same way before making its blob (they sit inside string literals).
  const workerSource = wasmWorkerContents.replace(/\n/g, '\\n');
  const dir = path.join(os.tmpdir(), 'dfd-tfjs-wasm');
  fs.mkdirSync(dir, { recursive: true });
  const { version_wasm: version } = (await import('@tensorflow/tfjs-backend-wasm')) as { version_wasm: string };
  const workerPath = path.join(dir, `pthread-worker-${version}-${workerSource.length}.cjs`);
  if (!fs.existsSync(workerPath)) {
    const tmp = `${workerPath}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, workerSource);
    fs.renameSync(tmp, workerPath);
  }

  class PlainWorker extends NodeWorker {
    constructor(file: string, options: Record<string, unknown> = {}) {
      super(file, { ...options, execArgv: [] });
    }
  }
  // Emscripten assigns global.Worker = worker_threads.Worker when it loads; keep ours.
  Object.defineProperty(globalThis, 'Worker', { get: () => PlainWorker, set: () => undefined, configurable: true });

  const factory = require(jsPath) as ModuleFactory;
  // tfjs computes its core count (emscripten_num_logical_cores() / 2) in a static initialiser.
  const realCpus = os.cpus;
  os.cpus = () => {
    const cpus = realCpus();
    return Array.from({ length: Math.max(cpus.length, 2 * threads) }, (_, i) => cpus[i % cpus.length]);
  };
  try {
    return await factory({
      locateFile: (p: string, prefix: string) => (p.endsWith('.worker.js') ? workerPath : p.endsWith('.wasm') ? wasmPath : prefix + p),
      mainScriptUrlOrBlob: jsPath,
      ...printHooks(),
    });
  } finally {
    os.cpus = realCpus;
  }
}

/** Starts the worker threads of dfd's wasm module (src/wasm-pool.ts) as worker_threads. */
export async function nodeTransformSpawner(): Promise<SpawnWorker> {
  const { Worker: NodeWorker } = await nodeImport<{ Worker: new (src: string, o: Record<string, unknown>) => PoolWorker }>('node:worker_threads');
  return (source, workerData) => new NodeWorker(source, { eval: true, workerData });
}
