import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const child = fileURLToPath(new URL('../test/threads-child.ts', import.meta.url));

interface ChildOut {
  reason: string;
  threads: number;
  loss: number;
  grads: number[][];
  transformThreads: number;
  winograd: { ran: number; maxDiff: number; scale: number; values: number[] };
  winograd6: { cached: number; maxDiff: number; scale: number; values: number[] };
  winogradBig: { maxDiff: number; scale: number; values: number[] };
}

async function step(threads: number, wasmPaths?: string | Record<string, string>): Promise<ChildOut> {
  const { stdout } = await run(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', child], {
    env: { ...process.env, DFD_WASM_THREADS: String(threads), ...(wasmPaths != null ? { DFD_TEST_WASM_PATHS: JSON.stringify(wasmPaths) } : {}) },
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  return JSON.parse(stdout) as ChildOut;
}

describe('multi-threaded wasm in Node (DFD_WASM_THREADS)', () => {
  it('runs XNNPACK on 3 threads and gives the single-threaded numbers bit for bit; the process exits on its own', async () => {
    const [one, three] = await Promise.all([step(1), step(3)]);
    expect(one.threads).toBe(1);
    expect(one.reason).toMatch(/single-threaded/);
    expect(three.threads).toBe(3);
    expect(three.reason).toMatch(/3 threads \(threaded SIMD build on worker_threads\)/);
    expect(Number.isFinite(one.loss)).toBe(true);
    expect(three.loss).toBe(one.loss);
    expect(three.grads.map((g) => g.length)).toEqual([3 * 3 * 5 * 24, 3 * 3 * 24 * 32, 32 * 7]);
    expect(three.grads).toEqual(one.grads);
    expect(Math.max(...one.grads[0]!.map(Math.abs))).toBeGreaterThan(1e-4);
    // Winograd inference ran on both builds (plain and shared-memory transform module; on 3
    // threads the transforms split the batch of 3 over the caller and 2 workers), agrees with the
    // direct convolution, and does not depend on the thread count either.
    expect(one.transformThreads).toBe(1);
    expect(three.transformThreads).toBe(3);
    for (const r of [one, three]) {
      expect(r.winograd.ran).toBe(1);
      expect(r.winograd.maxDiff / r.winograd.scale).toBeLessThan(3e-5);
      expect(r.winograd6.cached).toBe(1);
      expect(r.winograd6.maxDiff / r.winograd6.scale).toBeLessThan(1e-4);
      expect(r.winograd6.maxDiff).toBeGreaterThan(0); // F(6x6) really ran (rounding differs from direct)
      expect(r.winogradBig.maxDiff / r.winogradBig.scale).toBeLessThan(3e-5);
      expect(r.winogradBig.maxDiff).toBeGreaterThan(0);
    }
    expect(three.winograd.values).toEqual(one.winograd.values);
    expect(three.winograd6.values).toEqual(one.winograd6.values);
    expect(three.winogradBig.values).toEqual(one.winogradBig.values);
  });

  it('refuses a malformed DFD_WASM_THREADS with a message naming the variable', async () => {
    const err = (await step(0).catch((e: unknown) => e)) as { stderr: string };
    expect(err.stderr).toMatch(/DFD_WASM_THREADS must be a whole number >= 1, got '0'/);
  });
});

describe('wasmPaths in Node', () => {
  it('reads the .wasm binaries from a given folder (path, file: URL or file map) and names a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-wasm-paths-'));
    try {
      const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.js'));
      for (const f of ['tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) copyFileSync(join(dist, f), join(dir, f));
      const ref = await step(1);
      const [single, threaded, mapped] = await Promise.all([step(1, dir), step(2, pathToFileURL(dir).href + '/'), step(2, { 'tfjs-backend-wasm-threaded-simd.wasm': join(dir, 'tfjs-backend-wasm-threaded-simd.wasm') })]);
      expect(single.loss).toBe(ref.loss);
      expect(threaded.threads).toBe(2);
      expect(threaded.grads).toEqual(ref.grads);
      expect(mapped.loss).toBe(ref.loss);
      const missing = join(dir, 'nowhere') + '/';
      const err = (await step(2, missing).catch((e: unknown) => e)) as { stderr: string };
      expect(err.stderr).toContain(`backend 'wasm': wasmPaths points at ${join(missing, 'tfjs-backend-wasm-threaded-simd.wasm')}, which does not exist`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('XNNPACK failure lines (noteWasmOutput / takeWasmFailures)', () => {
  it('records "XNN status ... not successful" lines with the status meaning and leaves other output alone', async () => {
    const { noteWasmOutput, takeWasmFailures } = await import('./wasm-node.js');
    takeWasmFailures();
    const written: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    const origOut = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((s: string) => (written.push(`err:${s}`), true)) as typeof process.stderr.write;
    process.stdout.write = ((s: string) => (written.push(`out:${s}`), true)) as typeof process.stdout.write;
    try {
      expect(noteWasmOutput('XNN status for xnn_create_convolution2d_nhwc_f32 is not successful. Got status 6. Use -c dbg to see XNN logs.')).toBe(true);
      expect(noteWasmOutput('XNN status for xnn_setup_convolution2d_nhwc_f32 is not successful. Got status 2. Use -c dbg to see XNN logs.')).toBe(true);
      expect(noteWasmOutput('hello from wasm')).toBe(false);
    } finally {
      process.stderr.write = orig;
      process.stdout.write = origOut;
    }
    expect(takeWasmFailures()).toEqual(['xnn_create_convolution2d_nhwc_f32: status 6 (out of memory)', 'xnn_setup_convolution2d_nhwc_f32: status 2 (invalid parameter)']);
    expect(takeWasmFailures()).toEqual([]);
    expect(written[0]).toMatch(/^err:XNN status for xnn_create/);
    expect(written[2]).toBe('out:hello from wasm\n');
  });
});

describe('guarded wasm kernels (Node)', () => {
  it('a kernel that ran while XNNPACK failed throws WasmKernelFailure, frees its output, and the next kernel runs normally', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const { useBackend } = await import('./backends.js');
    const { noteWasmOutput, WasmKernelFailure } = await import('./wasm-node.js');
    await useBackend('wasm');
    const a = tf.tensor1d([1, 2, 3]);
    const before = tf.memory().numTensors;
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    noteWasmOutput('XNN status for xnn_create_convolution2d_nhwc_f32 is not successful. Got status 6. Use -c dbg to see XNN logs.');
    process.stderr.write = orig;
    let err: unknown;
    try {
      tf.add(a, a);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WasmKernelFailure);
    expect((err as InstanceType<typeof WasmKernelFailure>).code).toBe('E_WASM_XNNPACK');
    expect((err as Error).message).toBe(
      'wasm kernel Add: XNNPACK failed (xnn_create_convolution2d_nhwc_f32: status 6 (out of memory)); the 4 GB wasm heap is full: use a smaller batch (or micro-batches, --micro-batch 32)',
    );
    expect(tf.memory().numTensors).toBe(before);
    const b = tf.add(a, a);
    expect(Array.from(await b.data())).toEqual([2, 4, 6]);
    tf.dispose([a, b]);
  });
});
