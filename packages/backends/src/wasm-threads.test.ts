import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const child = fileURLToPath(new URL('../test/threads-child.ts', import.meta.url));

interface ChildOut {
  reason: string;
  threads: number;
  loss: number;
  grads: number[][];
}

async function step(threads: number): Promise<ChildOut> {
  const { stdout } = await run(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', child], {
    env: { ...process.env, DFD_WASM_THREADS: String(threads) },
    timeout: 120_000,
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
  });

  it('refuses a malformed DFD_WASM_THREADS with a message naming the variable', async () => {
    const err = (await step(0).catch((e: unknown) => e)) as { stderr: string };
    expect(err.stderr).toMatch(/DFD_WASM_THREADS must be a whole number >= 1, got '0'/);
  });
});
