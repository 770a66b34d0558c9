import { describe, expect, it } from 'vitest';
import { EventBus } from './bus.js';
import type { DfdEvent } from './events.js';

const batch = (step: number): DfdEvent => ({
  type: 'batchEnd', epoch: 0, step, stepsPerEpoch: 10, globalStep: step, totalSteps: 10, p: (step - 1) / 10,
  loss: { total: step / 10, cls: step / 20 }, learningRates: { backbone: 1e-3 },
});

describe('EventBus', () => {
  it('delivers events of the subscribed type, in emission order, asynchronously', async () => {
    const bus = new EventBus();
    const seen: number[] = [];
    bus.subscribe('batchEnd', (e) => void seen.push(e.step));
    for (let i = 0; i < 5; i++) bus.emit(batch(i));
    bus.emit({ type: 'epochEnd', epoch: 0, totalEpochs: 1, metrics: { loss: 1 } });
    expect(seen).toEqual([]); // emit never runs handlers inline
    await bus.drain();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('on(type) narrows to the typed variant and filters others', async () => {
    const bus = new EventBus();
    const epochs: number[] = [];
    const sub = bus.on('epochEnd').subscribe((e) => epochs.push(e.metrics.loss!));
    bus.emit(batch(1));
    bus.emit({ type: 'epochEnd', epoch: 0, totalEpochs: 2, metrics: { loss: 0.5 } });
    bus.emit({ type: 'epochEnd', epoch: 1, totalEpochs: 2, metrics: { loss: 0.25 } });
    await new Promise((r) => setTimeout(r, 5));
    sub.unsubscribe();
    expect(epochs).toEqual([0.5, 0.25]);
  });

  it('a slow async subscriber loses nothing and does not block the emitter or others', async () => {
    const bus = new EventBus();
    const slow: number[] = [];
    const fast: number[] = [];
    bus.subscribe('batchEnd', async (e) => {
      await new Promise((r) => setTimeout(r, 2));
      slow.push(e.step);
    });
    bus.subscribe('batchEnd', (e) => void fast.push(e.step));
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) bus.emit(batch(i));
    const emitMs = performance.now() - t0;
    expect(slow.length).toBe(0);
    await new Promise((r) => setTimeout(r, 1));
    expect(fast).toHaveLength(50);
    expect(slow.length).toBeLessThan(50);
    await bus.drain();
    expect(slow).toEqual([...Array(50).keys()]);
    // 50 emits must not have waited for 50 x 2 ms of handler time.
    expect(emitMs).toBeLessThan(100);
  });

  it('events are frozen copies: a subscriber cannot change what others see', async () => {
    const bus = new EventBus();
    const payload = batch(3);
    let frozen = false;
    bus.subscribe('batchEnd', (e) => {
      frozen = Object.isFrozen(e) && Object.isFrozen(e.loss);
    });
    bus.emit(payload);
    (payload as any).step = 99;
    const seen: number[] = [];
    bus.subscribe('batchEnd', (e) => void seen.push(e.step));
    await bus.drain();
    expect(frozen).toBe(true);
    expect(seen).toEqual([]);
  });

  it('a throwing handler becomes an error event naming its source', async () => {
    const bus = new EventBus();
    const errors: string[] = [];
    bus.subscribe('error', (e) => void errors.push(`${e.source}|${e.message}`));
    bus.subscribe('epochEnd', () => {
      throw new Error('disk full');
    }, 'jsonl-logger');
    bus.emit({ type: 'epochEnd', epoch: 0, totalEpochs: 1, metrics: {} });
    await bus.drain();
    await bus.drain();
    expect(errors).toEqual(["jsonl-logger|jsonl-logger failed on 'epochEnd': disk full"]);
  });
});
