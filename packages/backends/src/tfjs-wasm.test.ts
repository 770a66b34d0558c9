import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfjsWasm from '@tensorflow/tfjs-backend-wasm';
import { DfdError } from '@dfd/core';
import { useBackend } from './backends.js';
import { WasmVersionError } from './errors.js';
import { checkTfjsWasm, noteTfjsWasm, TFJS_WASM_VERSION } from './tfjs-wasm.js';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from './wasm-kernels.js';

/* @dfd/backends is pinned to one tfjs-backend-wasm, and registration refuses any other. */

beforeAll(async () => {
  await useBackend('wasm');
});

// Whatever a test noted, the real module is noted again (and dfd's kernels registered).
afterEach(() => {
  noteTfjsWasm(tfjsWasm);
  registerWasmTrainingKernels();
});

describe('the pinned tfjs-backend-wasm', () => {
  it('is what package.json pins (exactly), what is installed, and what is loaded', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    expect(pkg.dependencies['@tensorflow/tfjs-backend-wasm']).toBe(TFJS_WASM_VERSION);
    expect(pkg.dependencies['@tensorflow/tfjs-backend-cpu']).toBe(TFJS_WASM_VERSION);
    expect(pkg.peerDependencies['@tensorflow/tfjs-core']).toBe(TFJS_WASM_VERSION);
    const require = createRequire(import.meta.url);
    expect((require('@tensorflow/tfjs-backend-wasm/package.json') as { version: string }).version).toBe(TFJS_WASM_VERSION);
    expect(tfjsWasm.version_wasm).toBe(TFJS_WASM_VERSION);
    expect(tf.version_core).toBe(TFJS_WASM_VERSION);
    expect(() => checkTfjsWasm(tf.findBackend('wasm') as object)).not.toThrow();
  });

  it('registration fails with WasmVersionError naming both versions and the install command when another version is loaded', () => {
    unregisterWasmTrainingKernels();
    let caught: unknown;
    try {
      noteTfjsWasm({ version_wasm: '4.21.0' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(WasmVersionError);
    expect(caught).toBeInstanceOf(DfdError);
    const e = caught as WasmVersionError;
    expect(e.code).toBe('E_WASM_VERSION');
    expect(e.expected).toBe('4.22.0');
    expect(e.loaded).toBe('4.21.0');
    expect(e.message).toMatch(/needs @tensorflow\/tfjs-backend-wasm 4\.22\.0 exactly .* but 4\.21\.0 is loaded; run `npm install @tensorflow\/tfjs-backend-wasm@4\.22\.0 @tensorflow\/tfjs-core@4\.22\.0`/);
    // The noted module stays the wrong one: registering the kernels refuses, and registers nothing.
    expect(() => registerWasmTrainingKernels()).toThrow(WasmVersionError);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(tf.getKernel('DfdPreluGrad', 'wasm')).toBeUndefined();
  });

  it('fails when the active wasm backend comes from another copy of the package', () => {
    class OtherCopy {}
    noteTfjsWasm({ version_wasm: TFJS_WASM_VERSION, BackendWasm: OtherCopy });
    expect(() => checkTfjsWasm(tf.findBackend('wasm') as object)).toThrow(/the active 'wasm' backend was registered by another copy of @tensorflow\/tfjs-backend-wasm, not the 4\.22\.0/);
    expect(() => checkTfjsWasm(new OtherCopy())).not.toThrow();
  });

  it('without a noted module (the application registered the backend itself) registration says what to call', async () => {
    vi.resetModules();
    const fresh = await import('./tfjs-wasm.js');
    expect(() => fresh.checkTfjsWasm()).toThrow(/cannot tell which @tensorflow\/tfjs-backend-wasm is loaded .*noteTfjsWasm\(await import\('@tensorflow\/tfjs-backend-wasm'\)\) before registerWasmTrainingKernels\(\)/);
    fresh.noteTfjsWasm(tfjsWasm);
    expect(() => fresh.checkTfjsWasm()).not.toThrow();
  });

  it("useBackend('wasm') refuses another tfjs-backend-wasm version before it registers anything, and so does probeBackends' row", async () => {
    vi.resetModules();
    vi.doMock('@tensorflow/tfjs-backend-wasm', async (importOriginal) => ({ ...(await importOriginal<typeof tfjsWasm>()), version_wasm: '4.23.1' }));
    try {
      const fresh = await import('./backends.js');
      // A fresh module graph: its own WasmVersionError class, so the fields are compared.
      await expect(fresh.useBackend('wasm')).rejects.toMatchObject({ name: 'WasmVersionError', code: 'E_WASM_VERSION', expected: '4.22.0', loaded: '4.23.1' });
      await expect(fresh.useBackend('wasm')).rejects.toThrow(/needs @tensorflow\/tfjs-backend-wasm 4\.22\.0 exactly .* but 4\.23\.1 is loaded/);
      // auto does not skip it silently to the cpu backend either.
      await expect(fresh.useBackend('auto')).rejects.toMatchObject({ code: 'E_WASM_VERSION', loaded: '4.23.1' });
      const row = (await fresh.probeBackends()).find((p) => p.name === 'wasm');
      expect(row?.available).toBe(false);
      expect(row?.reason).toMatch(/but 4\.23\.1 is loaded; run `npm install @tensorflow\/tfjs-backend-wasm@4\.22\.0/);
    } finally {
      vi.doUnmock('@tensorflow/tfjs-backend-wasm');
      vi.resetModules();
    }
  });
});
