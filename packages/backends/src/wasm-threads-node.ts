import * as tf from '@tensorflow/tfjs-core';

/*
 * Multi-threaded tfjs wasm backend in Node.
 *
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

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] };
  tfjs?: unknown;
}

type NodeRequire = (id: string) => unknown;

/** What {@link registerThreadedWasmBackend} did. */
export interface ThreadedWasm {
  /** Threads XNNPACK runs on (the caller's thread included). */
  threads: number;
}

async function nodeImport<T>(specifier: string): Promise<T> {
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as T;
}

let registered: { threads: number } | null = null;

/**
 * Registers the tfjs backend `wasm` as the threaded SIMD build with `threads` XNNPACK threads
 * (replacing the single-threaded registration `@tensorflow/tfjs-backend-wasm` made on import).
 * Call before the wasm backend is first initialised; kernels registered for `wasm` (tfjs's and
 * dfd's) apply unchanged. Returns the thread count the backend will use.
 */
export async function registerThreadedWasmBackend(threads: number, wasmModule: { BackendWasm: new (m: never) => tf.KernelBackend; setThreadsCount(n: number): void }): Promise<ThreadedWasm> {
  if (registered) return { threads: registered.threads };
  const { createRequire } = await nodeImport<{ createRequire(url: string): NodeRequire & { resolve(id: string): string } }>('node:module');
  const fs = await nodeImport<{ existsSync(p: string): boolean; writeFileSync(p: string, d: string): void; renameSync(a: string, b: string): void; mkdirSync(p: string, o: object): void }>('node:fs');
  const osNs = await nodeImport<{ default: { tmpdir(): string; cpus(): unknown[] } }>('node:os');
  // Emscripten calls require('os').cpus(): patch the module object, not the ESM namespace.
  const os = osNs.default;
  const path = await nodeImport<{ join(...p: string[]): string; dirname(p: string): string }>('node:path');
  const { Worker: NodeWorker } = await nodeImport<{ Worker: new (f: string, o?: Record<string, unknown>) => object }>('node:worker_threads');

  const require = createRequire(import.meta.url);
  const jsPath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const wasmPath = jsPath.replace(/\.js$/, '.wasm');
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

  const factory = require(jsPath) as (config: Record<string, unknown>) => Promise<ThreadedModule>;
  // tfjs computes its core count (emscripten_num_logical_cores() / 2) in a static initialiser.
  const realCpus = os.cpus;
  os.cpus = () => {
    const cpus = realCpus();
    return Array.from({ length: Math.max(cpus.length, 2 * threads) }, (_, i) => cpus[i % cpus.length]);
  };
  let module: ThreadedModule;
  try {
    module = await factory({
      locateFile: (p: string, prefix: string) => (p.endsWith('.worker.js') ? workerPath : p.endsWith('.wasm') ? wasmPath : prefix + p),
      mainScriptUrlOrBlob: jsPath,
    });
  } finally {
    os.cpus = realCpus;
  }
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  wasmModule.setThreadsCount(threads);
  // Not initialised yet (the caller checks): drop the single-threaded factory so ours registers.
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    () => {
      const backend = new wasmModule.BackendWasm(module as never);
      for (const w of [...module.PThread.runningWorkers, ...module.PThread.unusedWorkers]) w.unref();
      return backend;
    },
    2,
  );
  registered = { threads };
  return { threads };
}
