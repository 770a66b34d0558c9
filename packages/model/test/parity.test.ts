// Parity with the PyTorch reference (tools/pytorch/dfd_ref.py via make_fixtures.py): converted
// weights must reproduce PyTorch's numbers in inference and training mode.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy, eifeLoss, miLoss } from '@dfd/mip';
import { createDfdNet, createEife, type DfdNet } from '../src/index.js';
import { input, loadFixture, loadInto, maxAbsDiff, torchToTf, type Fixture } from './fixtures.js';

const TOL = 1e-4;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function checkOutputs(f: Fixture, prefix: string, out: Record<string, any>): void {
  out.stages.forEach((s: tf.Tensor, i: number) => expect(maxAbsDiff(s, f.expected.get(`${prefix}.stage${i}`)), `${prefix}.stage${i}`).toBeLessThan(TOL));
  if (f.expected.has(`${prefix}.fused`)) expect(maxAbsDiff(out.fused, f.expected.get(`${prefix}.fused`)), 'fused').toBeLessThan(TOL);
  if (f.expected.has(`${prefix}.attOut`)) expect(maxAbsDiff(out.attOut, f.expected.get(`${prefix}.attOut`)), 'attOut').toBeLessThan(TOL);
  expect(maxAbsDiff(out.logits, f.expected.get(`${prefix}.logits`)), 'logits').toBeLessThan(TOL);
  (out.miPredictions ?? []).forEach((p: tf.Tensor, k: number) => expect(maxAbsDiff(p, f.expected.get(`${prefix}.mi${k}`)), `mi${k}`).toBeLessThan(TOL));
}

function checkBuffers(f: Fixture, prefix: string, model: DfdNet): void {
  const buffers = model.namedBuffers();
  expect(buffers.length).toBeGreaterThan(10);
  let worst = 0;
  for (const [name, v] of buffers) worst = Math.max(worst, maxAbsDiff(v, f.expected.get(`${prefix}.buffers.${name}`)));
  expect(worst).toBeLessThan(1e-5);
}

describe('DDL att+eifp (8 base channels) vs PyTorch', () => {
  const f = loadFixture('ddl_att_eifp_w8');
  const cfg = f.meta.config;

  it('has the same parameter names, shapes and count as the PyTorch state_dict', () => {
    const m = createDfdNet({ ...cfg, seed: 1 });
    expect(m.namedState().map(([n]) => n).sort()).toEqual([...f.weights.keys()].sort());
    expect(m.numParameters()).toBe(f.meta.parameterCount);
    m.dispose();
  });

  it('inference: stage outputs, fused, attOut, logits, MI predictions within 1e-4 (32x32 and 90x90)', () => {
    const m = createDfdNet({ ...cfg });
    loadInto(m, f.weights);
    for (const [prefix, x] of [['eval32', 'x32'], ['eval90', 'x90']] as const) {
      const xi = input(f, x);
      const out = m.forwardDetailed(xi, { training: false });
      if (prefix === 'eval90') expect(out.stages.map((s) => s.shape.slice(1))).toEqual([[45, 45, 8], [23, 23, 16], [12, 12, 32], [6, 6, 64]]);
      checkOutputs(f, prefix, out);
      tf.dispose([xi, out as any]);
    }
    m.dispose();
  });

  it('training mode: batch-statistics outputs, running-stat updates and gradients of L = CE + gamma L_MI match', () => {
    const m = createDfdNet({ ...cfg });
    loadInto(m, f.weights);
    m.setLambda(f.meta.train.lambda);
    const x = input(f, 'x32');
    const labels = tf.tensor1d(f.meta.train.labels, 'int32');
    const targets = [0, 1].map((k) => {
      const t = f.inputs.get(`target${k}`)!;
      return tf.tensor2d(t.data, t.shape as [number, number]);
    });
    const gradNames = [...f.expected.keys()].filter((k) => k.startsWith('train32.grad.')).map((k) => k.slice('train32.grad.'.length));
    const params = new Map(m.namedParameters());
    let detailed: any;
    let ce: tf.Scalar | undefined;
    let lmi: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      detailed = m.forwardDetailed(x, { training: true });
      tf.keep(detailed.logits);
      detailed.stages.forEach((s: tf.Tensor) => tf.keep(s));
      tf.keep(detailed.fused);
      tf.keep(detailed.attOut);
      detailed.miPredictions.forEach((p: tf.Tensor) => tf.keep(p));
      ce = tf.keep(crossEntropy(detailed.logits, labels));
      lmi = tf.keep(miLoss(detailed.miPredictions, targets));
      return tf.add(ce, tf.mul(lmi, f.meta.train.gamma)) as tf.Scalar;
    }, gradNames.map((n) => params.get(n)!));
    checkOutputs(f, 'train32', detailed);
    expect(maxAbsDiff(tf.reshape(ce!, [1]), f.expected.get('train32.ce'))).toBeLessThan(TOL);
    expect(maxAbsDiff(tf.reshape(lmi!, [1]), f.expected.get('train32.lmi'))).toBeLessThan(TOL);
    checkBuffers(f, 'train32', m);
    for (const n of gradNames) {
      const g = grads[params.get(n)!.name]!;
      // Gradients are stored in PyTorch layout: convert like weights.
      const e = torchToTf(f.expected.get(`train32.grad.${n}`)!);
      expect(maxAbsDiff(g, { shape: e.shape, data: e.dataSync() as Float32Array }), `grad ${n}`).toBeLessThan(TOL);
      e.dispose();
    }
    tf.dispose([value, grads as any, detailed, ce!, lmi!, x, labels, targets as any]);
    m.dispose();
  });
});

describe('torchvision layout att (4 base channels) vs PyTorch', () => {
  const f = loadFixture('tv_att_w4');

  it('inference at 90x90 (stages 23/12/6/3) and a training forward at 48x48 with running stats', () => {
    const m = createDfdNet({ ...f.meta.config });
    expect(m.numParameters()).toBe(f.meta.parameterCount);
    loadInto(m, f.weights);
    const x90 = input(f, 'x90');
    const e = m.forwardDetailed(x90, { training: false });
    expect(e.stages.map((s) => s.shape.slice(1, 3))).toEqual([[23, 23], [12, 12], [6, 6], [3, 3]]);
    checkOutputs(f, 'eval90', e);
    const x48 = input(f, 'x48');
    const t = m.forwardDetailed(x48, { training: true });
    checkOutputs(f, 'train48', t);
    checkBuffers(f, 'train48', m);
    tf.dispose([x90, x48, e as any, t as any]);
    m.dispose();
  });
});

describe('EIFE (4 base channels) vs PyTorch', () => {
  it('embedding, per-factor logits and the summed cross-entropy match', () => {
    const f = loadFixture('eife_w4');
    const m = createEife({ ...f.meta.config });
    loadInto(m, f.weights);
    const x = input(f, 'x32');
    const out = m.forward(x, { training: false });
    expect(maxAbsDiff(out.embedding, f.expected.get('embedding'))).toBeLessThan(TOL);
    for (const n of Object.keys(out.logits)) expect(maxAbsDiff(out.logits[n]!, f.expected.get(`logits.${n}`))).toBeLessThan(TOL);
    const labels = Object.fromEntries(Object.entries(f.meta.labels as Record<string, number[]>).map(([k, v]) => [k, tf.tensor1d(v, 'int32')]));
    const loss = eifeLoss(out.logits, labels);
    expect(maxAbsDiff(tf.reshape(loss, [1]), f.expected.get('loss'))).toBeLessThan(TOL);
    tf.dispose([x, out as any, loss, labels as any]);
    m.dispose();
  });
});

describe('tiny_dfdnet.pth through the importer (torch.save -> createDfdNet -> loadStateDictInto)', () => {
  it('reproduces PyTorch logits, Att_out and MI predictions within 1e-4', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { FIXTURE_DIR, decodeHalf } = await import('./fixtures.js');
    const { inferDfdNetConfig, loadStateDictInto, parseTorchCheckpoint } = await import('../src/index.js');
    const doc = JSON.parse(readFileSync(join(FIXTURE_DIR, 'tiny_dfdnet.json'), 'utf8'));
    const sd = parseTorchCheckpoint(new Uint8Array(readFileSync(join(FIXTURE_DIR, 'tiny_dfdnet.pth'))), { name: 'tiny_dfdnet.pth' });
    const inferred = inferDfdNetConfig(sd);
    expect(inferred).toMatchObject(doc.config);
    const m = createDfdNet(inferred);
    loadStateDictInto(m, sd);
    const x = tf.tensor4d(decodeHalf(new Uint8Array(Buffer.from(doc.input.base64, 'base64'))), doc.input.shape);
    const out = m.forward(x, { training: false });
    const raw = (v: number[][]) => ({ shape: [v.length, v[0]!.length], data: Float32Array.from(v.flat()) });
    expect(maxAbsDiff(out.logits, raw(doc.logits))).toBeLessThan(TOL);
    expect(maxAbsDiff(out.attOut!, raw(doc.attOut))).toBeLessThan(TOL);
    out.miPredictions!.forEach((p, k) => expect(maxAbsDiff(p, raw(doc.mi[k]))).toBeLessThan(TOL));
    tf.dispose([x, out as any]);
    m.dispose();
  });
});
