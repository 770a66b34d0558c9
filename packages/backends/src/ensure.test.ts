import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ensureBackend } from './ensure.js';

// Runs in its own worker (vitest forks): no backend is active when the first test starts.
describe('ensureBackend', () => {
  afterEach(() => vi.restoreAllMocks());

  it('auto starts the backend the application registered, the tfjs way, with gradients and without the node banner', async () => {
    expect(tf.engine().backendName ?? null).toBeNull();
    await import('@tensorflow/tfjs-backend-cpu');
    const warn = vi.spyOn(console, 'warn');
    const used = await ensureBackend();
    expect(used).toEqual({ name: 'cpu', reason: 'already active' });
    expect(tf.getBackend()).toBe('cpu');
    expect(tf.getGradient('Conv2D')).toBeDefined();
    const x = tf.tensor1d([1, 2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(x);
    expect(Array.from(g.dataSync())).toEqual([2, 4, 6]);
    tf.dispose([x, g]);
    expect(warn.mock.calls.flat().join(' ')).not.toMatch(/node backend/);
  });

  it('keeps the active backend for auto and for its own name; concurrent calls select once', async () => {
    const [a, b, c] = await Promise.all([ensureBackend('auto'), ensureBackend('cpu'), ensureBackend()]);
    expect([a.name, b.name, c.name]).toEqual(['cpu', 'cpu', 'cpu']);
    expect([a.reason, b.reason, c.reason]).toEqual(['already active', 'already active', 'already active']);
  });

  it('rejects an unknown name with the list of known ones', async () => {
    await expect(ensureBackend('tpu')).rejects.toMatchObject({ code: 'E_BACKEND_UNKNOWN', message: expect.stringContaining('auto, cpu, wasm') });
    // The queue survives a failed call.
    expect((await ensureBackend()).name).toBe('cpu');
  });
});
