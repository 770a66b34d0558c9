import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { BackendUnavailableError } from './errors.js';
import { registerGradients } from './gradients.js';
import { initialisedBackend, silenceCpuBanner } from './registry.js';
import { checkDfdFlags } from './flags.js';
import { checkTfjsWasm, noteTfjsWasm } from './tfjs-wasm.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';
import { prepareWasmWinograd } from './wasm-module.js';

/** Every backend dfd knows, in `auto` preference order (fastest first). */
export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;

/** A backend dfd can select; `auto` picks the fastest one that works. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Options of {@link useBackend}. */
export interface UseBackendOptions {
  /**
   * wasm: where the `.wasm` binaries are, as tfjs's setWasmPaths() takes it: a folder prefix
   * (URL, or in Node a path or `file:` URL) or a map from file name to location; for bundlers and
   * packaged apps that move them. In Node the package's own copies are used without it.
   */
  wasmPaths?: string | Record<string, string>;
  /**
   * wasm: XNNPACK threads. Node: runs tfjs's threaded SIMD build on worker_threads when > 1
   * (default: the available CPUs, at most 8; `DFD_WASM_THREADS` overrides the default; 1 = the
   * single-threaded build). Browser: needs a cross-origin-isolated page.
   */
  threads?: number;
  /** wasm: register dfd's training kernels (Conv2DBackpropFilter etc.); default true. */
  trainingKernels?: boolean;
  /**
   * wasm: 3x3 stride-1 convolutions by Winograd F(4x4,3x3) / F(6x6,3x3) (with dfd's kernels):
   * inference from a frozen filter's second use; training convolutions large enough to pay for
   * a per-call filter transform (the flag DFD_WASM_WINOGRAD_TRAINING off keeps those direct).
   * Given, it sets the tf.env() flag DFD_WASM_WINOGRAD; left out, the flag keeps its value
   * (default true; `DFD_WASM_WINOGRAD=0` in the environment turns the default off).
   */
  winograd?: boolean;
  /** Register tfjs-core's gradient functions (needed by tf.grad, optimizers, model.fit); default true. */
  gradients?: boolean;
  /** auto: also consider WebGPU in Node (Dawn); off by default because without a GPU it is a slow correctness path. */
  nodeWebgpu?: boolean;
}

/** What {@link useBackend} selected and why. */
export interface UsedBackend {
  /** The dfd backend name (`tensorflow-gpu` runs as tfjs backend `tensorflow`). */
  name: string;
  /** Human-readable reason, e.g. which faster backends were skipped and why. */
  reason: string;
}

/** One row of {@link probeBackends}. */
export interface BackendProbe {
  name: string;
  available: boolean;
  /** Why it is unavailable and what to install. */
  reason?: string;
  /** Details of an available backend (SIMD, threads, adapter...). */
  note?: string;
}

interface Loaded {
  /** The tfjs backend name to pass to tf.setBackend. */
  tfName: string;
  note: string;
}

const INSTALL: Record<string, string> = {
  'tensorflow-gpu':
    'install it with `npm install @tensorflow/tfjs-node-gpu@^4.22.0` on Linux x64 with an NVIDIA GPU, CUDA 11.2 and cuDNN 8.1; ' +
    'its install script downloads libtensorflow (GPU) at install time, so the machine needs network access then ' +
    '(npm >= 11: allow the install script)',
  tensorflow:
    'install it with `npm install @tensorflow/tfjs-node@^4.22.0` (Linux/macOS/Windows x64, Node >= 18); ' +
    'its install script downloads libtensorflow at install time, so the machine needs network access then ' +
    '(npm >= 11: allow the install script)',
  webgpu:
    'in a browser it needs navigator.gpu (Chrome/Edge 113+); in Node install `npm install @tensorflow/tfjs-backend-webgpu@^4.22.0 webgpu` ' +
    '(Dawn); without a GPU, Dawn can run on SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json',
};

/**
 * A wasm thread count from `source` (an option, flag or environment variable, named in the
 * error): a whole number >= 1, else DfdError E_BACKEND_OPTION.
 */
export function parseThreadCount(value: unknown, source: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new DfdError('E_BACKEND_OPTION', `${source} must be a whole number >= 1, got '${String(value)}'`);
  }
  return n;
}

/** Default wasm thread count in Node: DFD_WASM_THREADS, else the available CPUs (at most 8). */
function defaultNodeThreads(cpus: number): number {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const env = p?.env?.DFD_WASM_THREADS;
  if (env != null && env !== '') return parseThreadCount(env, 'DFD_WASM_THREADS');
  return Math.min(8, Math.max(1, cpus));
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return p?.versions?.node != null;
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? e.message;
  if (typeof e === 'object' && e !== null && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

/** Imports an optional package by a non-literal specifier so bundlers do not try to resolve it. */
async function importOptional(backend: string, specifier: string): Promise<Record<string, unknown>> {
  try {
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as Record<string, unknown>;
  } catch (e) {
    const msg = errorText(e);
    const code = (e as { code?: string }).code;
    const missing =
      code === 'ERR_MODULE_NOT_FOUND' ||
      code === 'MODULE_NOT_FOUND' ||
      /Cannot find (module|package)|Could not resolve|Cannot resolve|Module not found|Failed to (load|resolve)/i.test(msg);
    if (missing && msg.includes(specifier)) {
      throw new BackendUnavailableError(backend, `backend '${backend}': package ${specifier} is not installed; ${INSTALL[backend] ?? ''}`, { cause: e });
    }
    throw new BackendUnavailableError(
      backend,
      `backend '${backend}': ${specifier} is installed but failed to load (${msg}); ${INSTALL[backend] ?? ''}`,
      { cause: e },
    );
  }
}

/** Loads and registers the backend's module; does not make it active. */
async function load(name: BackendName, opts: UseBackendOptions): Promise<Loaded> {
  switch (name) {
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      return { tfName: 'cpu', note: 'pure JavaScript (slow: reference and tests)' };
    case 'wasm': {
      if (typeof WebAssembly === 'undefined') {
        throw new BackendUnavailableError('wasm', "backend 'wasm': this JavaScript runtime has no WebAssembly");
      }
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // dfd works inside this module (src/tfjs-wasm.ts): it must be the pinned version.
      noteTfjsWasm(wasm);
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      let threadNote: string;
      if (isNode()) {
        const osSpec = 'node:os';
        const os = (await import(/* @vite-ignore */ /* webpackIgnore: true */ osSpec)) as { availableParallelism?(): number; cpus(): unknown[] };
        const want = opts.threads != null ? parseThreadCount(opts.threads, 'useBackend option threads') : defaultNodeThreads(os.availableParallelism?.() ?? os.cpus().length);
        if (initialisedBackend('wasm') != null) {
          threadNote = `already initialised (${wasm.getThreadsCount()} thread${wasm.getThreadsCount() === 1 ? '' : 's'})`;
        } else {
          const { registerNodeWasmBackend } = await import('./wasm-node.js');
          const { threads } = await registerNodeWasmBackend(want, simd === true, wasm, opts.wasmPaths);
          threadNote = threads > 1 ? `${threads} threads (threaded SIMD build on worker_threads)` : 'single-threaded';
        }
        // Also when tfjs's own loader started the module: errors print as dfd's, not as 55 KB of its source.
        const { replaceEmscriptenProcessHandlers } = await import('./process-errors.js');
        replaceEmscriptenProcessHandlers();
      } else {
        if (initialisedBackend('wasm') == null) {
          // Both setters throw once the module is initialised, so only call them before the first init.
          if (opts.wasmPaths != null) wasm.setWasmPaths(opts.wasmPaths);
          if (opts.threads != null) wasm.setThreadsCount(opts.threads);
        }
        const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
        threadNote = threads ? 'multi-threaded' : 'single-threaded (page is not cross-origin isolated)';
      }
      return { tfName: 'wasm', note: `XNNPACK, SIMD ${simd ? 'on' : 'off'}, ${threadNote}` };
    }
    case 'webgpu': {
      const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
      if (nav?.gpu == null) {
        if (!isNode()) {
          throw new BackendUnavailableError('webgpu', `backend 'webgpu': this browser has no navigator.gpu; ${INSTALL.webgpu}`);
        }
        const dawn = await importOptional('webgpu', 'webgpu');
        const create = dawn.create as ((flags: string[]) => unknown) | undefined;
        if (typeof create !== 'function') {
          throw new BackendUnavailableError('webgpu', `backend 'webgpu': the 'webgpu' package has no create(); ${INSTALL.webgpu}`);
        }
        // The tfjs webgpu backend reads GPUBufferUsage & co. as globals and navigator.gpu at import time.
        if (dawn.globals != null) Object.assign(globalThis, dawn.globals);
        Object.defineProperty(globalThis, 'navigator', {
          value: { ...(nav ?? {}), gpu: create([]) },
          configurable: true,
          writable: true,
        });
      }
      const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
      const adapter = (await gpu.requestAdapter()) as { info?: { vendor?: string; architecture?: string }; isFallbackAdapter?: boolean } | null;
      if (adapter == null) {
        throw new BackendUnavailableError('webgpu', `backend 'webgpu': navigator.gpu.requestAdapter() returned no adapter; ${INSTALL.webgpu}`);
      }
      await importOptional('webgpu', '@tensorflow/tfjs-backend-webgpu');
      const info = adapter.info;
      const desc = info ? `${info.vendor ?? '?'} ${info.architecture ?? ''}`.trim() : 'adapter found';
      return { tfName: 'webgpu', note: `WebGPU (${desc}${adapter.isFallbackAdapter ? ', fallback/CPU adapter' : ''})` };
    }
    case 'tensorflow':
      await importOptional('tensorflow', '@tensorflow/tfjs-node');
      return { tfName: 'tensorflow', note: 'native libtensorflow (CPU)' };
    case 'tensorflow-gpu':
      await importOptional('tensorflow-gpu', '@tensorflow/tfjs-node-gpu');
      return { tfName: 'tensorflow', note: 'native libtensorflow (CUDA)' };
  }
}

/** Makes a loaded backend active; throws BackendUnavailableError when its init fails. */
async function activate(name: BackendName, loaded: Loaded, opts: UseBackendOptions): Promise<void> {
  if (tf.findBackendFactory(loaded.tfName) == null) {
    throw new BackendUnavailableError(
      name,
      `backend '${name}': the package loaded but registered no '${loaded.tfName}' backend with this @tensorflow/tfjs-core ` +
        `(${tf.version_core}); it probably brought its own tfjs-core copy: align it to @tensorflow/tfjs-core@${tf.version_core}`,
    );
  }
  const ok = await tf.setBackend(loaded.tfName);
  if (!ok) {
    const hint =
      name === 'wasm'
        ? 'the .wasm binaries could not be loaded: pass useBackend("wasm", {wasmPaths}) pointing at node_modules/@tensorflow/tfjs-backend-wasm/dist/'
        : (INSTALL[name] ?? '');
    throw new BackendUnavailableError(name, `backend '${name}': initialisation failed; ${hint}`);
  }
  await tf.ready();
  // The active wasm backend must come from the module load() checked, not from another copy.
  if (loaded.tfName === 'wasm') checkTfjsWasm(tf.backend());
  if (loaded.tfName === 'cpu') silenceCpuBanner();
  if (opts.gradients !== false) await registerGradients();
  if (loaded.tfName === 'wasm' && opts.trainingKernels !== false) {
    if (opts.winograd != null) tf.env().set('DFD_WASM_WINOGRAD', opts.winograd);
    // A bad flag value (environment, URL, tf.env().set) fails here, not in the first convolution.
    checkDfdFlags();
    registerWasmTrainingKernels();
    // dfd's wasm module (src/wasm-module.ts): Winograd transforms and GEMMs, dW, the PReLU
    // gradient, batch norm. On Node's threaded build it gets worker threads too (src/wasm-pool.ts).
    const node = isNode() ? await import('./wasm-node.js') : null;
    const threads = node?.nodeWasmThreads() ?? 1;
    await prepareWasmWinograd(node != null && threads > 1 ? { threads, spawn: await node.nodeTransformSpawner() } : {});
  }
  if (loaded.tfName === 'wasm' && isNode()) {
    // dfd loaded the module with print hooks (wasm-node.ts): turn XNNPACK failures into errors.
    const { guardWasmKernels } = await import('./wasm-node.js');
    guardWasmKernels();
  }
}

function checkName(name: string): asserts name is BackendName | 'auto' {
  if (name !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new DfdError('E_BACKEND_UNKNOWN', `unknown backend '${name}': use one of auto, ${[...BACKEND_NAMES].reverse().join(', ')}`);
  }
}

/**
 * Selects a tfjs backend by dfd name and waits until it is ready. `auto` tries
 * tensorflow-gpu > tensorflow > webgpu (browser) > wasm (with training kernels) > cpu and says why.
 */
export async function useBackend(name: BackendName | 'auto', opts: UseBackendOptions = {}): Promise<UsedBackend> {
  checkName(name);
  if (name !== 'auto') {
    const loaded = await load(name, opts);
    await activate(name, loaded, opts);
    const kernels = loaded.tfName === 'wasm' && opts.trainingKernels !== false ? ', dfd training kernels registered' : '';
    return { name, reason: `requested: ${loaded.note}${kernels}` };
  }
  const skipped: string[] = [];
  for (const candidate of BACKEND_NAMES) {
    if (candidate === 'webgpu' && isNode() && opts.nodeWebgpu !== true) {
      skipped.push('webgpu (not a browser; in Node it is opt-in with {nodeWebgpu: true})');
      continue;
    }
    try {
      const loaded = await load(candidate, opts);
      await activate(candidate, loaded, opts);
      const kernels = loaded.tfName === 'wasm' && opts.trainingKernels !== false ? ' with dfd training kernels' : '';
      const why = `auto picked ${candidate}: the fastest backend that works here (${loaded.note}${kernels})`;
      return { name: candidate, reason: skipped.length > 0 ? `${why}; skipped: ${skipped.join('; ')}` : why };
    } catch (e) {
      if (!(e instanceof BackendUnavailableError)) throw e;
      skipped.push(`${candidate} (${shortReason(e.message)})`);
    }
  }
  throw new BackendUnavailableError('auto', `no tfjs backend works here; tried: ${skipped.join('; ')}`);
}

function shortReason(message: string): string {
  const m = /^backend '[^']+': (.*?)(;|$)/.exec(message);
  return m?.[1] ?? message;
}

/**
 * Lists all five backends with availability and the reason the missing ones are missing.
 * Does not change the active backend (backends that initialise stay registered for later use).
 */
export async function probeBackends(opts: UseBackendOptions = {}): Promise<BackendProbe[]> {
  const out: BackendProbe[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      const loaded = await load(name, opts);
      if (tf.findBackendFactory(loaded.tfName) == null) {
        throw new BackendUnavailableError(name, `the package registered no '${loaded.tfName}' backend with this @tensorflow/tfjs-core (${tf.version_core})`);
      }
      if (loaded.tfName !== 'webgpu' && !(await initialise(loaded.tfName))) {
        throw new BackendUnavailableError(name, `backend '${name}': initialisation failed; ${INSTALL[name] ?? ''}`);
      }
      out.push({ name, available: true, note: loaded.note });
    } catch (e) {
      out.push({ name, available: false, reason: errorText(e).replace(/^backend '[^']+': /, '') });
    }
  }
  return out;
}

/** Initialises a registered backend without making it active. */
async function initialise(tfName: string): Promise<boolean> {
  if (tf.findBackend(tfName) != null) return true;
  // Engine.initializeBackend is private in the typings but is the only way to init without switching.
  const engine = tf.engine() as unknown as {
    initializeBackend?: (n: string) => { success: boolean | Promise<boolean> };
  };
  if (typeof engine.initializeBackend === 'function') {
    return await engine.initializeBackend(tfName).success;
  }
  const previous = tf.engine().backendName as string | null;
  const ok = await tf.setBackend(tfName);
  if (previous != null) await tf.setBackend(previous);
  return ok;
}
