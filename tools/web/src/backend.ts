import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@dfd/backends';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

/** The browser backends, fastest first: the app takes the first one that initialises. */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

/** A backend the web app can run on. */
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

/** What happened while choosing: the chosen backend and why each faster one was skipped. */
export interface BackendChoice {
  backend: BrowserBackend;
  skipped: Array<{ backend: BrowserBackend; reason: string }>;
}

// Vite fingerprints the .wasm files; tfjs must be told where they ended up.
setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

/**
 * Initialise the first backend of `order` that works here. WebGPU needs an adapter
 * (`navigator.gpu.requestAdapter()`), which tfjs only discovers inside setBackend, so each
 * candidate is tried for real rather than guessed from feature detection.
 */
export async function chooseBackend(order: readonly BrowserBackend[] = BROWSER_BACKENDS): Promise<BackendChoice> {
  const skipped: BackendChoice['skipped'] = [];
  for (const backend of order) {
    try {
      if (backend === 'webgpu' && !('gpu' in navigator)) throw new Error('navigator.gpu is missing (WebGPU disabled or unsupported)');
      if (backend === 'wasm') {
        // dfd's wasm setup: the training kernels stock tfjs-wasm lacks (Conv2DBackpropFilter, a
        // correct MaxPoolGrad, ...) and dfd's Winograd convolutions; the binaries' URLs are set above.
        await useBackend('wasm');
      } else {
        const ok = await tf.setBackend(backend);
        if (!ok) throw new Error('tf.setBackend returned false');
        await tf.ready();
      }
      // A tiny op proves the backend really runs (WebGL contexts can exist yet fail to compile).
      const probe = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)));
      const value = (await probe.data())[0];
      probe.dispose();
      if (value !== 3) throw new Error(`probe returned ${value}`);
      return { backend, skipped };
    } catch (err) {
      skipped.push({ backend, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  throw new Error(`no TensorFlow.js backend works here: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}

/** Reads `?backend=a,b` from the page URL so a user (or a test) can force the order. */
export function backendOrderFromUrl(search: string): BrowserBackend[] {
  const raw = new URLSearchParams(search).get('backend');
  if (!raw) return [...BROWSER_BACKENDS];
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(BROWSER_BACKENDS as readonly string[]).includes(n));
  if (bad.length > 0) throw new Error(`?backend= lists unknown backend(s) ${bad.join(', ')}; use ${BROWSER_BACKENDS.join(', ')}`);
  return names as BrowserBackend[];
}
