import { describe, expect, it } from 'vitest';
import { inject, injectable } from './index.js';
import { EventBus } from './bus.js';
import { createContainer } from './container.js';
import { PluginHost } from './plugin.js';
import { Rng } from './rng.js';
import { TOKENS } from './tokens.js';

@injectable()
class Counter {
  count = 0;
  constructor(@inject(TOKENS.Bus) readonly bus: EventBus, @inject(TOKENS.Config) readonly config: Record<string, unknown>) {}
}

describe('createContainer', () => {
  it('gives each run its own bus, config, RNG and plugin host', async () => {
    const a = createContainer({ config: { name: 'a' }, seed: 1 });
    const b = createContainer({ config: { name: 'b' }, seed: 1 });
    expect(a.resolve(TOKENS.Bus)).not.toBe(b.resolve(TOKENS.Bus));
    expect(a.resolve(TOKENS.Bus)).toBe(a.resolve(TOKENS.Bus));
    expect(a.resolve(TOKENS.Config)).toEqual({ name: 'a' });
    expect(b.resolve(TOKENS.Config)).toEqual({ name: 'b' });
    expect(a.resolve(TOKENS.PluginHost)).toBeInstanceOf(PluginHost);
    expect(a.resolve(TOKENS.PluginHost)).not.toBe(b.resolve(TOKENS.PluginHost));
    // Same seed, separate generators: drawing from one does not advance the other.
    const ra = a.resolve(TOKENS.Rng);
    const rb = b.resolve(TOKENS.Rng);
    expect(ra).toBeInstanceOf(Rng);
    const first = ra.nextUint32();
    ra.nextUint32();
    expect(rb.nextUint32()).toBe(first);

    // Events on one run's bus never reach the other's subscribers.
    const seenB: string[] = [];
    b.resolve(TOKENS.Bus).subscribe('warning', (e) => void seenB.push(e.message));
    a.resolve(TOKENS.Bus).emit({ type: 'warning', source: 't', message: 'for a' });
    b.resolve(TOKENS.Bus).emit({ type: 'warning', source: 't', message: 'for b' });
    await a.resolve(TOKENS.Bus).drain();
    await b.resolve(TOKENS.Bus).drain();
    expect(seenB).toEqual(['for b']);
  });

  it('injects by explicit token, per container', () => {
    const a = createContainer({ config: { lr: 1 } });
    const b = createContainer({ config: { lr: 2 } });
    const ca = a.resolve(Counter);
    const cb = b.resolve(Counter);
    expect(ca.config).toEqual({ lr: 1 });
    expect(cb.config).toEqual({ lr: 2 });
    expect(ca.bus).toBe(a.resolve(TOKENS.Bus));
    expect(cb.bus).not.toBe(ca.bus);
  });

  it('config is read-only', () => {
    const c = createContainer({ config: { lr: 1 } });
    expect(() => {
      (c.resolve(TOKENS.Config) as any).lr = 5;
    }).toThrow(TypeError);
  });
});
