import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone has no gradient functions (tfjs-layers or @dfd/backends registerGradients() add them).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModuleOptionError, backboneStageShapes, createBackbone, fuseStages, fusionPool } from './index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('stage shapes', () => {
  it('full width at 90x90 (DDL): 45x45x64, 23x23x128, 12x12x256, 6x6x512', () => {
    expect(backboneStageShapes({ inputSize: 90 })).toEqual([
      [45, 45, 64],
      [23, 23, 128],
      [12, 12, 256],
      [6, 6, 512],
    ]);
    expect(backboneStageShapes({ inputSize: 90, layout: 'torchvision' }).map((s) => s[0])).toEqual([23, 12, 6, 3]);
  });

  it('a real forward (8 base channels, 90x90) gives exactly the computed shapes, both layouts', () => {
    for (const layout of ['ddl', 'torchvision'] as const) {
      const net = createBackbone({ layout, width: 0.125, rng: 1 });
      const x = tf.randomNormal([1, 90, 90, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
      const outs = net.forward(x, { training: false });
      expect(outs.map((o) => o.shape.slice(1))).toEqual(backboneStageShapes({ layout, width: 0.125 }));
      expect(net.channels).toEqual([8, 16, 32, 64]);
      tf.dispose([x, ...outs]);
      net.dispose();
    }
  });

  it('rejects a bad width, layout or input size with ModuleOptionError naming the option', () => {
    expect(() => createBackbone({ width: 0 })).toThrow(ModuleOptionError);
    expect(() => createBackbone({ width: 0 })).toThrow(/'width'/);
    expect(() => createBackbone({ layout: 'vgg' as never })).toThrow(/'layout'/);
    expect(() => createBackbone({ inputSize: 3 })).toThrow(/'inputSize'/);
  });
});

describe('parameter names', () => {
  it('DDL names follow METHOD.md (stem, stages.i.j.{bn1,act1,conv1,bn2,act2,conv2,shortcut})', () => {
    const net = createBackbone({ width: 0.0625 });
    const names = net.namedParameters().map(([n]) => n);
    expect(names.slice(0, 4)).toEqual(['stem.conv.weight', 'stem.bn.weight', 'stem.bn.bias', 'stem.act.weight']);
    expect(names).toContain('stages.0.0.shortcut.weight');
    expect(names).toContain('stages.3.1.act2.weight');
    expect(names).not.toContain('stages.0.1.shortcut.weight');
    expect(net.namedBuffers().map(([n]) => n)).toContain('stages.0.1.bn2.running_mean');
    // Stage 0's first block has cin == cout but stride 2: it still needs the shortcut conv.
    const sc = net.namedParameters().find(([n]) => n === 'stages.0.0.shortcut.weight')![1];
    expect(sc.shape).toEqual([1, 1, 4, 4]);
    net.dispose();
  });

  it('torchvision names follow torchvision resnet18 (conv1, bn1, layerK.i.downsample.{0,1})', () => {
    const net = createBackbone({ layout: 'torchvision', width: 0.0625 });
    const names = net.namedState().map(([n]) => n);
    expect(names).toContain('conv1.weight');
    expect(names).toContain('layer2.0.downsample.0.weight');
    expect(names).toContain('layer2.0.downsample.1.running_var');
    expect(names).not.toContain('layer1.0.downsample.0.weight');
    expect(net.namedParameters().find(([n]) => n === 'conv1.weight')![1].shape).toEqual([7, 7, 3, 4]);
    net.dispose();
  });
});

describe('fusion (Eq. 3)', () => {
  it('window/stride per METHOD.md: 45->6 10/7, 23->6 8/3, 12->6 2/2', () => {
    expect(fusionPool(45, 6)).toEqual({ window: 10, stride: 7 });
    expect(fusionPool(23, 6)).toEqual({ window: 8, stride: 3 });
    expect(fusionPool(12, 6)).toEqual({ window: 2, stride: 2 });
  });

  it('equals a direct max over each window, channels concatenated in stage order', () => {
    const shapes = [[45, 3], [23, 2], [12, 2], [6, 4]] as const;
    const stages = shapes.map(([h, c], i) => tf.randomUniform([2, h, h, c], -1, 1, 'float32', 10 + i) as tf.Tensor4D);
    const fused = fuseStages(stages);
    expect(fused.shape).toEqual([2, 6, 6, 7]);
    const f = fused.arraySync() as number[][][][];
    let ch = 0;
    for (const [s, [h, c]] of stages.slice(0, 3).map((t, i) => [t, shapes[i]!] as const)) {
      const a = s.arraySync() as number[][][][];
      const { window, stride } = fusionPool(h, 6);
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < 6; i++)
          for (let j = 0; j < 6; j++)
            for (let k = 0; k < c; k++) {
              let m = -Infinity;
              for (let di = 0; di < window; di++) for (let dj = 0; dj < window; dj++) m = Math.max(m, a[b]![i * stride + di]![j * stride + dj]![k]!);
              expect(f[b]![i]![j]![ch + k]).toBe(m);
            }
      ch += c;
    }
    tf.dispose([...stages, fused]);
  });

  it('full width gives 6x6x448', () => {
    const stages = backboneStageShapes().map(([h, w, c]) => tf.zeros([1, h, w, c]) as tf.Tensor4D);
    const fused = fuseStages(stages);
    expect(fused.shape).toEqual([1, 6, 6, 448]);
    tf.dispose([...stages, fused]);
  });
});

describe('training', () => {
  it('same seed -> same weights; repeated forward/backward leaks no tensors', () => {
    const a = createBackbone({ width: 0.0625, rng: 42 });
    const b = createBackbone({ width: 0.0625, rng: 42 });
    const c = createBackbone({ width: 0.0625, rng: 43 });
    const flat = (m: typeof a) => m.namedParameters().flatMap(([, v]) => Array.from(v.dataSync()));
    expect(flat(b)).toEqual(flat(a));
    expect(flat(c)).not.toEqual(flat(a));
    b.dispose();
    c.dispose();
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const counts: number[] = [];
    for (let step = 0; step < 3; step++) {
      const { value, grads } = tf.variableGrads(() => tf.mean(a.forward(x, { training: true })[3]) as tf.Scalar, a.parameters());
      expect(Object.keys(grads).length).toBe(a.parameters().length);
      tf.dispose([value, grads as any]);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[2]).toBe(counts[0]);
    x.dispose();
    a.dispose();
  });
});
