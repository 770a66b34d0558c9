import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DfdError, Rng } from '@dfd/core';
import { useBackend } from './backends.js';
import { DFD_FLAGS, checkDfdFlags, flagOn, winogradTileFlag } from './flags.js';
import { randn } from './test-utils/compare.js';
import { setWasmWinograd, setWasmWinogradTile, setWasmWinogradTraining, wasmWinogradEnabled, wasmWinogradTile, wasmWinogradTraining, winogradStats } from './winograd.js';

/* dfd's switches are tf.env() flags: registered, defaulted, validated, and they switch the kernels. */

beforeAll(async () => {
  await useBackend('wasm');
});

afterEach(() => {
  tf.env().set('DFD_WASM_WINOGRAD', true);
  tf.env().set('DFD_WASM_WINOGRAD_TRAINING', true);
  tf.env().set('DFD_WASM_WINOGRAD_TILE', 'auto');
});

describe('dfd flags on tf.env()', () => {
  it('are registered with their documented defaults', () => {
    expect(DFD_FLAGS.map((f) => f.name)).toEqual(['DFD_WASM_WINOGRAD', 'DFD_WASM_WINOGRAD_TRAINING', 'DFD_WASM_WINOGRAD_TILE']);
    const registry = (tf.env() as unknown as { flagRegistry: Record<string, unknown> }).flagRegistry;
    for (const f of DFD_FLAGS) {
      expect(registry[f.name], f.name).toBeDefined();
      expect(f.doc.length).toBeGreaterThan(40);
    }
    // This process sets none of the environment variables: the defaults hold.
    expect([DFD_FLAGS[0].default, DFD_FLAGS[1].default, DFD_FLAGS[2].default]).toEqual([true, true, 'auto']);
    expect(tf.env().get('DFD_WASM_WINOGRAD')).toBe(true);
    expect(tf.env().get('DFD_WASM_WINOGRAD_TRAINING')).toBe(true);
    expect(tf.env().get('DFD_WASM_WINOGRAD_TILE')).toBe('auto');
  });

  it('the setters are the flags: each one sets its flag, and tf.env().set is what the getters read', () => {
    setWasmWinograd(false);
    expect(tf.env().get('DFD_WASM_WINOGRAD')).toBe(false);
    tf.env().set('DFD_WASM_WINOGRAD', true);
    expect(wasmWinogradEnabled()).toBe(true);
    setWasmWinogradTraining(false);
    expect(tf.env().get('DFD_WASM_WINOGRAD_TRAINING')).toBe(false);
    tf.env().set('DFD_WASM_WINOGRAD_TRAINING', true);
    expect(wasmWinogradTraining()).toBe(true);
    setWasmWinogradTile(6);
    expect(tf.env().get('DFD_WASM_WINOGRAD_TILE')).toBe(6);
    // The URL form (?tfjsflags=DFD_WASM_WINOGRAD_TILE:4) arrives as a number, a variable as a string.
    tf.env().set('DFD_WASM_WINOGRAD_TILE', '4');
    expect(wasmWinogradTile()).toBe(4);
    tf.env().set('DFD_WASM_WINOGRAD', 'off');
    expect(flagOn('DFD_WASM_WINOGRAD')).toBe(false);
  });

  it('a value that is not one of the flag\'s throws a DfdError naming the flag, from set and from every read until fixed', () => {
    const set = (): void => tf.env().set('DFD_WASM_WINOGRAD_TILE', 5);
    expect(set).toThrow(DfdError);
    expect(set).toThrow(/flag DFD_WASM_WINOGRAD_TILE must be 'auto', 4 or 6, got 5; set it with tf\.env\(\)\.set\('DFD_WASM_WINOGRAD_TILE', 'auto'\)/);
    expect(() => winogradTileFlag()).toThrow(/DFD_WASM_WINOGRAD_TILE must be 'auto', 4 or 6, got 5/);
    expect(() => checkDfdFlags()).toThrow(/DFD_WASM_WINOGRAD_TILE/);
    tf.env().set('DFD_WASM_WINOGRAD_TILE', 'auto');
    expect(() => checkDfdFlags()).not.toThrow();
    expect(() => tf.env().set('DFD_WASM_WINOGRAD', 'maybe')).toThrow(/flag DFD_WASM_WINOGRAD must be true or false, got "maybe"/);
    tf.env().set('DFD_WASM_WINOGRAD', true);
    // The setter's own check comes first and leaves the flag alone.
    expect(() => setWasmWinogradTile(5 as never)).toThrow(/tile must be 'auto', 4 or 6, got 5/);
    expect(wasmWinogradTile()).toBe('auto');
  });

  it('defaults come from the environment variable of the same name, and a bad one is named', () => {
    const saved = tf.env().getFlags()['DFD_WASM_WINOGRAD_TILE'];
    try {
      process.env.DFD_WASM_WINOGRAD_TILE = '6';
      delete tf.env().getFlags()['DFD_WASM_WINOGRAD_TILE'];
      expect(winogradTileFlag()).toBe(6);
      process.env.DFD_WASM_WINOGRAD_TILE = 'seven';
      delete tf.env().getFlags()['DFD_WASM_WINOGRAD_TILE'];
      expect(() => winogradTileFlag()).toThrow(/environment variable DFD_WASM_WINOGRAD_TILE must be 'auto', 4 or 6, got "seven"/);
      process.env.DFD_WASM_WINOGRAD_TILE = '';
      delete tf.env().getFlags()['DFD_WASM_WINOGRAD_TILE'];
      expect(winogradTileFlag()).toBe('auto');
    } finally {
      delete process.env.DFD_WASM_WINOGRAD_TILE;
      tf.env().getFlags()['DFD_WASM_WINOGRAD_TILE'] = saved ?? 'auto';
    }
  });

  it('toggling DFD_WASM_WINOGRAD and DFD_WASM_WINOGRAD_TRAINING switches the convolution path; turning Winograd off frees the cached filters', async () => {
    await tf.setBackend('wasm');
    const rng = new Rng('flags');
    const x = tf.tensor4d(randn(rng, [1, 8, 8, 16]), [1, 8, 8, 16]);
    const f = tf.tensor4d(randn(rng, [3, 3, 16, 16]), [3, 3, 16, 16]);
    const conv = (): void => tf.conv2d(x, f, 1, 'same').dispose();
    conv(); // first use: direct
    let before = winogradStats().convolutions;
    conv();
    expect(winogradStats().convolutions).toBe(before + 1);
    expect(winogradStats().cachedFilters).toBeGreaterThan(0);
    tf.env().set('DFD_WASM_WINOGRAD', false);
    expect(winogradStats().cachedFilters).toBe(0);
    before = winogradStats().convolutions;
    conv();
    conv();
    expect(winogradStats().convolutions).toBe(before);
    tf.env().set('DFD_WASM_WINOGRAD', true);
    conv(); // the cache was cleared: the filter is new again
    conv();
    expect(winogradStats().convolutions).toBe(before + 1);
    // Training: 4 x 8 x 8 = 256 F(4x4) tiles, over the per-call threshold.
    const xt = tf.tensor4d(randn(rng, [4, 31, 30, 16]), [4, 31, 30, 16]);
    const grad = (): void => {
      const g = tf.grad((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, f, 1, 'same')))(xt);
      g.dispose();
    };
    let t0 = winogradStats().transient;
    grad();
    expect(winogradStats().transient - t0).toBe(2); // forward and dx
    tf.env().set('DFD_WASM_WINOGRAD_TRAINING', false);
    t0 = winogradStats().transient;
    grad();
    expect(winogradStats().transient).toBe(t0);
    tf.env().set('DFD_WASM_WINOGRAD_TRAINING', true);
    tf.env().set('DFD_WASM_WINOGRAD', false);
    grad();
    expect(winogradStats().transient).toBe(t0);
    tf.dispose([x, f, xt]);
  });

  it("useBackend('wasm', {winograd}) sets DFD_WASM_WINOGRAD; left out, it keeps the flag's value", async () => {
    await useBackend('wasm', { winograd: false });
    expect(tf.env().get('DFD_WASM_WINOGRAD')).toBe(false);
    await useBackend('wasm');
    expect(tf.env().get('DFD_WASM_WINOGRAD')).toBe(false);
    await useBackend('wasm', { winograd: true });
    expect(tf.env().get('DFD_WASM_WINOGRAD')).toBe(true);
  });

  it('a second copy of @dfd/backends (its own flags module) keeps the first copy\'s set hooks: both hear a change', async () => {
    await tf.setBackend('wasm');
    const rng = new Rng('flags copies');
    const x = tf.tensor4d(randn(rng, [1, 8, 8, 16]), [1, 8, 8, 16]);
    const f = tf.tensor4d(randn(rng, [3, 3, 16, 16]), [3, 3, 16, 16]);
    tf.conv2d(x, f, 1, 'same').dispose();
    tf.conv2d(x, f, 1, 'same').dispose();
    expect(winogradStats().cachedFilters).toBeGreaterThan(0);
    vi.resetModules();
    const copy = await import('./flags.js');
    const heard: unknown[] = [];
    copy.onFlagSet('DFD_WASM_WINOGRAD', (v) => heard.push(v));
    tf.env().set('DFD_WASM_WINOGRAD', false);
    expect(heard).toEqual([false]);
    expect(winogradStats().cachedFilters).toBe(0); // this copy's listener ran too
    expect(copy.flagOn('DFD_WASM_WINOGRAD')).toBe(false);
    expect(() => tf.env().set('DFD_WASM_WINOGRAD_TILE', 3)).toThrow(/DFD_WASM_WINOGRAD_TILE must be 'auto', 4 or 6, got 3/);
    tf.env().set('DFD_WASM_WINOGRAD_TILE', 'auto');
    tf.dispose([x, f]);
  });
});
