import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BatchNorm2d, Conv2d, Linear, Module, PReLU } from '@dfd/backbone';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointMismatchError } from './errors.js';
import { inferDfdNetConfig } from './infer.js';
import { loadStateDictInto, parsePrefixMap, remapKeys, stateDictOf } from './load.js';
import { parseTorchCheckpoint } from './torch.js';
import type { StateDict } from './tensor.js';

const FIX = join(import.meta.dirname, '../../test/import-fixtures');
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')).tensors as Record<string, { shape: number[]; values: number[] }>;
const tiny = (): StateDict => parseTorchCheckpoint(new Uint8Array(readFileSync(join(FIX, 'tiny.pth'))), { name: 'tiny.pth' });

/** The module whose state_dict tiny.pth holds (conv 3->4 k3, BN 4, Linear 4->2, PReLU). */
class Tiny extends Module {
  readonly conv = this.addModule('conv', new Conv2d(3, 4, { kernelSize: 3, rng: 1 }));
  readonly bn = this.addModule('bn', new BatchNorm2d(4));
  readonly fc = this.addModule('fc', new Linear(4, 2, { rng: 2 }));
  readonly prelu = this.addModule('prelu', new PReLU());
}

/** tiny.pth restricted to Tiny's keys. */
function tinyModelSd(): StateDict {
  const sd = tiny();
  for (const k of [...sd.keys()]) if (!/^(conv|bn|fc|prelu)\./.test(k)) sd.delete(k);
  return sd;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('loadStateDictInto', () => {
  it('loads PyTorch tensors into tfjs layouts (OIHW -> HWIO, [out,in] -> [in,out]) exactly', async () => {
    const m = new Tiny();
    const res = loadStateDictInto(m, tinyModelSd(), { name: 'tiny.pth' });
    expect(res.ignored).toEqual(['bn.num_batches_tracked']);
    expect(res.loaded).toHaveLength(8);
    // conv.weight[o][i][h][w] (PyTorch, from python) == tfjs weight[h][w][i][o].
    const w = (await m.conv.weight.array()) as number[][][][];
    const ew = expected['conv.weight']!.values;
    for (const [o, i, h, x] of [[0, 0, 0, 0], [3, 2, 1, 0], [1, 2, 2, 1], [2, 0, 1, 2]] as const) {
      expect(w[h]![x]![i]![o]).toBe(Math.fround(ew[((o * 3 + i) * 3 + h) * 3 + x]!));
    }
    const fw = (await m.fc.weight.array()) as number[][];
    const efw = expected['fc.weight']!.values;
    expect(fw[3]![1]).toBe(Math.fround(efw[1 * 4 + 3]!));
    expect(Array.from(await m.bn.runningVar.data())).toEqual(expected['bn.running_var']!.values.map(Math.fround));
    expect(Array.from(await m.prelu.weight.data())).toEqual([0.25]);
    // And back: stateDictOf inverts the layout change.
    const back = await stateDictOf(m);
    expect(Array.from(back.get('conv.weight')!.data as Float32Array)).toEqual(ew.map(Math.fround));
    expect(back.get('conv.weight')!.shape).toEqual([4, 3, 3, 3]);
    m.dispose();
  });

  it('names every missing, unexpected and mis-shaped key, and assigns nothing on failure', async () => {
    const m = new Tiny();
    const before = Array.from(await m.conv.weight.data());
    const sd = tinyModelSd();
    sd.delete('bn.running_mean');
    sd.set('fc.extra', sd.get('fc.bias')!);
    const conv = sd.get('conv.weight')!;
    sd.set('conv.weight', { ...conv, shape: [4, 3, 9], data: conv.data });
    let err: unknown;
    try {
      loadStateDictInto(m, sd, { name: 'bad.pth' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    const e = err as CheckpointMismatchError;
    expect(e.missing).toEqual(['bn.running_mean']);
    expect(e.unexpected).toEqual(['fc.extra']);
    expect(e.mismatched).toEqual([{ key: 'conv.weight', expected: [4, 3, 3, 3], got: [4, 3, 9] }]);
    expect(e.message).toContain("checkpoint 'bad.pth' does not match the model");
    expect(e.message).toContain('conv.weight (expected [4, 3, 3, 3], got [4, 3, 9])');
    expect(e.message).toContain('1 missing from the checkpoint: bn.running_mean');
    expect(e.message).toContain('1 unexpected (not in the model): fc.extra');
    expect(Array.from(await m.conv.weight.data())).toEqual(before);
    // Non-strict: missing/unexpected are reported, wrong shapes still refused.
    sd.set('conv.weight', conv);
    const res = loadStateDictInto(m, sd, { strict: false });
    expect(res.missing).toEqual(['bn.running_mean']);
    expect(res.unexpected).toEqual(['fc.extra']);
    m.dispose();
  });

  it('maps prefixes (backbone.=efe., DataParallel module.) and loads only efe.* with backboneOnly', async () => {
    class WithEfe extends Module {
      readonly efe = this.addModule('efe', new Tiny());
      readonly classifier = this.addModule('classifier', new Linear(4, 7, { rng: 3 }));
    }
    const m = new WithEfe();
    const clsBefore = Array.from(await m.classifier.weight.data());
    const sd = remapKeys(tinyModelSd(), parsePrefixMap(['=backbone.']));
    sd.set('head.weight', sd.get('backbone.fc.weight')!);
    const res = loadStateDictInto(m, sd, { prefixMap: parsePrefixMap(['backbone.=efe.']), backboneOnly: true });
    expect(res.loaded).toContain('efe.conv.weight');
    expect(res.ignored).toEqual(['efe.bn.num_batches_tracked', 'head.weight']);
    expect(Array.from(await m.classifier.weight.data())).toEqual(clsBefore);
    expect(Array.from(await m.efe.fc.bias!.data())).toEqual(expected['fc.bias']!.values.map(Math.fround));
    // Without the mapping nothing matches, and the error says which efe.* keys are missing.
    expect(() => loadStateDictInto(m, sd, { backboneOnly: true })).toThrow(/missing from the checkpoint: efe\.conv\.weight, efe\.bn\.weight/);
    expect(() => parsePrefixMap(['nope'])).toThrow(/has no '='/);
    // First match wins: fc.=fc. shields fc.* from the catch-all =efe. rule.
    expect([...remapKeys(new Map([['fc.weight', sd.get('head.weight')!], ['conv1.weight', sd.get('head.weight')!]]), parsePrefixMap(['fc.=fc.', '=efe.'])).keys()]).toEqual([
      'fc.weight',
      'efe.conv1.weight',
    ]);
    expect(() => remapKeys(sd, [['backbone.', ''], ['head.', 'fc.']])).toThrow(/prefix map sends both 'backbone\.fc\.weight' and 'head\.weight' to 'fc\.weight'/);
    m.dispose();
  });

  it('leaks no tensors', () => {
    const m = new Tiny();
    const sd = tinyModelSd();
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) loadStateDictInto(m, sd);
    expect(tf.memory().numTensors).toBe(n0);
    m.dispose();
  });
});

describe('inferDfdNetConfig', () => {
  const entry = (shape: number[]) => ({ shape, dtype: 'float32' as const, sourceDtype: 'float32' as const, data: new Float32Array(0) });
  it('reads variant, width, layout, classes and MI head sizes from names and shapes', () => {
    const sd: StateDict = new Map([
      ['efe.stem.conv.weight', entry([16, 3, 3, 3])],
      ['attention.delta', entry([2])],
      ['classifier.weight', entry([7, 128])],
      ['eifp.heads.0.fc1.weight', entry([32, 128])],
      ['eifp.heads.0.fc2.weight', entry([256, 32])],
      ['eifp.heads.1.fc2.weight', entry([64, 32])],
    ]);
    expect(inferDfdNetConfig(sd)).toEqual({ variant: 'att+eifp', width: 0.25, layout: 'ddl', numClasses: 7, miDims: [256, 64], miHidden: 32 });
    sd.delete('eifp.heads.0.fc2.weight');
    sd.delete('eifp.heads.0.fc1.weight');
    expect(inferDfdNetConfig(sd).variant).toBe('att');
    sd.delete('attention.delta');
    expect(inferDfdNetConfig(sd).variant).toBe('base');
    expect(() => inferDfdNetConfig(new Map([['conv1.weight', entry([64, 3, 7, 7])]]), 'r18.pth')).toThrow(/checkpoint 'r18\.pth': no EFE stem weight.*prefix map/);
  });
});
