import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone has no gradient functions (tfjs-layers or @dfd/backends registerGradients() add them).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttentionBlock, ClassifierHead } from './index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('AttentionBlock (Eq. 4-5)', () => {
  it('has the METHOD.md parameter names, delta initialised to [1, 1]', () => {
    const att = new AttentionBlock({ fusedChannels: 7, channels: 8, rng: 1 });
    expect(att.namedParameters().map(([n]) => n)).toEqual([
      'delta',
      'proj.weight',
      'mask.conv1.weight',
      'mask.bn1.weight',
      'mask.bn1.bias',
      'mask.act1.weight',
      'mask.conv2.weight',
      'mask.bn2.weight',
      'mask.bn2.bias',
      'select.conv.weight',
      'select.bn.weight',
      'select.bn.bias',
      'select.act.weight',
    ]);
    expect(Array.from(att.delta.dataSync())).toEqual([1, 1]);
    expect(att.proj.weight.shape).toEqual([1, 1, 7, 8]);
    expect(att.proj.bias).toBeNull();
    att.dispose();
  });

  it('z = d1 proj(f_fused) + d2 f_L, Mask in (0, 1), Att_out = max over H, W of h(Mask * f_L)', () => {
    const att = new AttentionBlock({ fusedChannels: 3, channels: 4, rng: 2 });
    att.delta.assign(tf.tensor1d([0.5, 2]));
    const fused = tf.randomNormal([2, 3, 3, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const last = tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const out = att.forwardDetailed(fused, last, { training: false });
    const zRef = tf.add(tf.mul(0.5, att.proj.forward(fused)), tf.mul(2, last));
    expect(tf.max(tf.abs(tf.sub(out.z, zRef))).dataSync()[0]).toBeLessThan(1e-6);
    const m = out.mask.dataSync();
    expect(Math.min(...m)).toBeGreaterThan(0);
    expect(Math.max(...m)).toBeLessThan(1);
    const h = att.select.forward(tf.mul(out.mask, last) as tf.Tensor4D, { training: false });
    const hd = h.arraySync() as number[][][][];
    const a = out.attOut.arraySync() as number[][];
    expect(out.attOut.shape).toEqual([2, 4]);
    for (let b = 0; b < 2; b++)
      for (let c = 0; c < 4; c++) expect(a[b]![c]).toBe(Math.max(...hd[b]!.flatMap((row) => row.map((px) => px[c]!))));
    tf.dispose([fused, last, out as any, zRef, h]);
    att.dispose();
  });

  it('delta and every conv receive a gradient; mismatched H/W is a ShapeError', () => {
    const att = new AttentionBlock({ fusedChannels: 3, channels: 4, rng: 3 });
    const fused = tf.randomNormal([2, 3, 3, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const last = tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 5) as tf.Tensor4D;
    const { value, grads } = tf.variableGrads(() => tf.sum(att.forward(fused, last, { training: true })) as tf.Scalar, att.parameters());
    // select.act's slope is skipped: after the global max pool the winning values are positive,
    // so a PReLU slope legitimately gets no gradient from this loss.
    for (const [n, v] of att.namedParameters().filter(([name]) => name !== 'select.act.weight')) {
      expect(tf.max(tf.abs(grads[v.name]!)).dataSync()[0], n).toBeGreaterThan(0);
    }
    const small = tf.zeros([2, 2, 2, 4]) as tf.Tensor4D;
    expect(() => att.forward(fused, small, { training: false })).toThrow(/same H and W/);
    tf.dispose([fused, last, small, value, grads as any]);
    att.dispose();
  });

  it('ClassifierHead is a Linear C -> 7 named weight/bias', () => {
    const c = new ClassifierHead(16);
    expect(c.namedParameters().map(([n, v]) => [n, v.shape])).toEqual([
      ['weight', [16, 7]],
      ['bias', [7]],
    ]);
    c.dispose();
  });
});
