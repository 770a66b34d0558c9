import { describe, expect, it } from 'vitest';
import { EventBus, TOKENS, createContainer } from '@dfd/core';
import { DatasetFormatError, DatasetSpecError } from './errors.js';
import { ferplusMajority, ageGroup, expressionFromName } from './labels.js';
import { DATASET_REGISTRY, DatasetRegistry } from './registry.js';
import { parseSpec } from './spec.js';
import type { DatasetPlugin, Sample } from './types.js';

const px = (i: number): Sample => ({ id: `x${i}`, image: { kind: 'pixels', width: 1, height: 1, channels: 1, data: Uint8Array.of(i) }, expression: i % 7 });

const tiny: DatasetPlugin = {
  name: 'tiny',
  labels: { expression: true, factors: [] },
  async validate(location) {
    return location === 'bad' ? [{ severity: 'error', message: 'folder bad does not exist', file: 'bad' }] : [];
  },
  async load(location, options, ctx) {
    if (options.skip) ctx.warn({ kind: 'unknown-class', message: 'skipped 3 images of contempt', count: 3 });
    const n = Number(options.n ?? 4);
    return { name: `tiny:${location}`, plugin: 'tiny', splits: { train: Array.from({ length: n }, (_, i) => px(i)), test: [px(9)] }, hasExpression: true, warnings: [] };
  },
};

describe('parseSpec', () => {
  it('splits plugin, location and options', () => {
    expect(parseSpec('rafdb:/data/RAF-DB')).toEqual({ plugin: 'rafdb', location: '/data/RAF-DB', options: {}, text: 'rafdb:/data/RAF-DB' });
    expect(parseSpec('synthetic:wild?train=2000&test=500&size=48')).toMatchObject({ plugin: 'synthetic', location: 'wild', options: { train: '2000', test: '500', size: '48' } });
    expect(parseSpec('Folder:C:/data/x').plugin).toBe('folder');
    expect(parseSpec('folder:C:/data/x').location).toBe('C:/data/x');
    expect(() => parseSpec('/data/RAF-DB')).toThrow(DatasetSpecError);
    expect(() => parseSpec('C:/data')).toThrow(/no plugin prefix.*folder:C:\/data/);
  });
});

describe('DatasetRegistry', () => {
  it('registers, lists and resolves plugins', async () => {
    const reg = new DatasetRegistry([tiny]);
    expect(reg.has('TINY')).toBe(true);
    expect(reg.list().map((p) => p.name)).toEqual(['tiny']);
    const ds = await reg.resolve('tiny:/somewhere?n=5');
    expect(ds.splits.train!.length).toBe(5);
    expect(ds.name).toBe('tiny:/somewhere?n=5');
    expect(() => reg.register(tiny)).toThrow(/already registered/);
    reg.register({ ...tiny, description: 'v2' }, { override: true });
    expect(reg.get('tiny')!.description).toBe('v2');
  });

  it('names the registered plugins when the spec names an unknown one', async () => {
    await expect(new DatasetRegistry([tiny]).resolve('rafdb:/x')).rejects.toThrow(/no dataset plugin 'rafdb'.*registered: tiny/);
  });

  it('turns validation errors and empty splits into DatasetFormatError', async () => {
    const reg = new DatasetRegistry([tiny]);
    const err = await reg.resolve('tiny:bad').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).file).toBe('bad');
    expect((err as Error).message).toMatch(/folder bad does not exist/);
    await expect(reg.resolve('tiny:x?n=0')).rejects.toThrow(/split 'train' of 'tiny:x\?n=0' is empty/);
    expect((await reg.resolve('tiny:x?n=0', { allowEmpty: true })).splits.train).toEqual([]);
  });

  it('wraps file-system errors of a plugin into DatasetFormatError naming the path', async () => {
    const failing: DatasetPlugin = {
      ...tiny,
      name: 'failing',
      async load() {
        throw Object.assign(new Error("EACCES: permission denied, scandir '/data/x'"), { code: 'EACCES', path: '/data/x' });
      },
    };
    const err = await new DatasetRegistry([failing]).resolve('failing:/data').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).file).toBe('/data/x');
    expect((err as Error).message).toMatch(/EACCES.*while loading 'failing:\/data'/);
    const plain: DatasetPlugin = { ...tiny, name: 'plain', load: async () => Promise.reject(new TypeError('bug')) };
    await expect(new DatasetRegistry([plain]).resolve('plain:x')).rejects.toThrow(TypeError);
  });

  it('rejects objects that are not plugins', () => {
    const reg = new DatasetRegistry();
    expect(() => reg.register({ name: 'x y', load: async () => ({}) } as never)).toThrow(/not a dataset plugin/);
    expect(() => reg.register({ name: 'nolabels', load: async () => ({}) } as never)).toThrow(/labels/);
  });

  it('records counted skips and publishes them as warning events', async () => {
    const bus = new EventBus();
    const events: unknown[] = [];
    bus.subscribe('warning', (e) => void events.push(e));
    const ds = await new DatasetRegistry([tiny]).resolve('tiny:x?skip=1', { bus });
    await bus.drain();
    expect(ds.warnings).toEqual([{ kind: 'unknown-class', message: 'skipped 3 images of contempt', count: 3 }]);
    expect(events).toEqual([{ type: 'warning', source: 'datasets/tiny', message: 'skipped 3 images of contempt', detail: { kind: 'unknown-class', count: 3 } }]);
  });

  it('is injectable under TOKENS.DatasetRegistry', () => {
    const container = createContainer();
    const reg = new DatasetRegistry([tiny]);
    container.registerInstance(DATASET_REGISTRY, reg);
    expect(DATASET_REGISTRY).toBe(TOKENS.DatasetRegistry);
    expect(container.resolve(DATASET_REGISTRY)).toBe(reg);
  });
});

describe('label rules (METHOD.md)', () => {
  it('FERPlus majority vote: <=1 zeroed, > half wins, contempt/unknown/NF dropped', () => {
    // neutral..fear, contempt, unknown, NF
    expect(ferplusMajority([6, 2, 1, 1, 0, 0, 0, 0, 0, 0])).toBe(6); // neutral 6 of 8 after zeroing
    expect(ferplusMajority([0, 10, 0, 0, 0, 0, 0, 0, 0, 0])).toBe(3); // happiness
    expect(ferplusMajority([4, 4, 2, 0, 0, 0, 0, 0, 0, 0])).toBeUndefined(); // no majority
    expect(ferplusMajority([5, 1, 1, 1, 1, 1, 0, 0, 0, 0])).toBe(6); // singles zeroed -> 5 of 5
    expect(ferplusMajority([5, 0, 0, 0, 0, 0, 0, 0, 0, 5])).toBeUndefined(); // exactly half is not a majority
    expect(ferplusMajority([0, 0, 0, 0, 0, 0, 0, 7, 3, 0])).toBeUndefined(); // contempt
    expect(ferplusMajority([0, 0, 0, 0, 0, 0, 0, 0, 0, 10])).toBeUndefined(); // not a face
    expect(ferplusMajority([0, 0, 0, 0, 0, 0, 9, 0, 0, 1])).toBe(1); // fear
    expect(ferplusMajority([1, 1, 1, 1, 1, 1, 1, 1, 1, 1])).toBeUndefined(); // all zeroed
  });

  it('age groups and class-folder synonyms', () => {
    expect([0, 3, 4, 19, 20, 39, 40, 69, 70, 116].map(ageGroup)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    expect(['angry', 'Anger', 'SAD', 'sadness', 'happy', 'surprised', 'normal', 'fear', 'disgust', 'contempt'].map(expressionFromName)).toEqual([
      5, 5, 4, 4, 3, 0, 6, 1, 2, undefined,
    ]);
  });
});
