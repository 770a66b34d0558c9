import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DfdNet, ModelFormatError, createBackboneModel, createDfdNet, createEife, loadModelFromUrl, modelFromArtifacts, modelToArtifacts, type DfdModel } from './index.js';
import { loadModelDir, saveModelDir } from './node.js';

let dir = '';
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'dfd-model-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function outputs(m: DfdModel, x: tf.Tensor4D): number[] {
  const tensors = collect(m.forward(x, { training: false }));
  const v = tensors.flatMap((t) => Array.from(t.dataSync()));
  tf.dispose(tensors);
  return v;
}

function collect(o: unknown): tf.Tensor[] {
  if (o instanceof tf.Tensor) return [o];
  if (Array.isArray(o)) return o.flatMap(collect);
  if (o && typeof o === 'object') return Object.keys(o).sort().flatMap((k) => collect((o as Record<string, unknown>)[k]));
  return [];
}

/** A trained-looking model: perturb every parameter and buffer so defaults cannot pass by accident. */
function perturb(m: DfdModel, seed: number): void {
  m.namedState().forEach(([, v], i) => v.assign(tf.tidy(() => tf.add(v, tf.randomUniform(v.shape, 0, 0.1, 'float32', seed + i)))));
}

describe('artifacts', () => {
  it('dfd-net, eife and backbone round-trip with identical outputs, config and labels', async () => {
    const x = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const models: DfdModel[] = [
      createDfdNet({ variant: 'att+eifp', width: 0.0625, miDims: [4, 4], miHidden: 8, seed: 1, lambda: 0.3 }),
      createEife({ factors: [{ name: 'gender', classes: 3 }], width: 0.0625, embedDim: 8 }),
      createBackboneModel({ width: 0.0625, layout: 'torchvision' }),
    ];
    for (const m of models) {
      perturb(m, 10);
      const { modelJson, weights } = await modelToArtifacts(m);
      expect(modelJson.format).toBe('dfd-model');
      const n = modelJson.weightsManifest[0]!.weights.length;
      expect(n).toBe(m.namedState().length);
      const back = modelFromArtifacts(JSON.parse(JSON.stringify(modelJson)), weights);
      expect(back.config).toEqual(m.config);
      expect(outputs(back, x)).toEqual(outputs(m, x));
      for (const [[na, a], [nb, b]] of back.namedState().map((e, i) => [e, m.namedState()[i]!] as const)) {
        expect(na).toBe(nb);
        expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      }
      back.dispose();
      m.dispose();
    }
    const { modelJson } = await modelToArtifacts(createDfdNet({ variant: 'base', width: 0.0625 }));
    expect(modelJson.kind).toBe('dfd-net');
    expect(modelJson.labels).toEqual(['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral']);
    x.dispose();
  });

  it('rejects truncated weights, foreign files and mismatched architectures with ModelFormatError', async () => {
    const m = createDfdNet({ variant: 'att', width: 0.0625 });
    const { modelJson, weights } = await modelToArtifacts(m);
    expect(() => modelFromArtifacts(modelJson, weights.slice(0, 100))).toThrow(/truncated/);
    expect(() => modelFromArtifacts({ ...modelJson, format: 'x' }, weights)).toThrow(ModelFormatError);
    expect(() => modelFromArtifacts({ ...modelJson, formatVersion: 2 }, weights)).toThrow(/formatVersion/);
    const renamed = JSON.parse(JSON.stringify(modelJson));
    renamed.weightsManifest[0].weights[0].name = 'efe.nope.weight';
    expect(() => modelFromArtifacts(renamed, weights)).toThrow(/missing: efe.stem.conv.weight.*unexpected: efe.nope.weight/);
    const otherVariant = { ...modelJson, config: { ...modelJson.config, variant: 'base' } };
    expect(() => modelFromArtifacts(otherVariant, weights)).toThrow(/unexpected: attention\./);
    m.dispose();
  });

  it('loadModelFromUrl fetches model.json and weights relative to it', async () => {
    const m = createDfdNet({ variant: 'base', width: 0.0625, seed: 9 });
    const { modelJson, weights } = await modelToArtifacts(m);
    const seen: string[] = [];
    const fakeFetch = (async (u: string) => {
      seen.push(u);
      if (u.endsWith('/m/model.json')) return new Response(JSON.stringify(modelJson));
      if (u.endsWith('/m/weights.bin')) return new Response(weights);
      return new Response('no', { status: 404 });
    }) as typeof fetch;
    const back = await loadModelFromUrl('http://host/m/model.json', { fetch: fakeFetch });
    expect(seen).toEqual(['http://host/m/model.json', 'http://host/m/weights.bin']);
    expect(back).toBeInstanceOf(DfdNet);
    expect(Array.from(back.parameters()[0]!.dataSync())).toEqual(Array.from(m.parameters()[0]!.dataSync()));
    await expect(loadModelFromUrl('http://host/x/model.json', { fetch: fakeFetch })).rejects.toThrow(/HTTP 404/);
    back.dispose();
    m.dispose();
  });
});

describe('model directory (node)', () => {
  it('saveModelDir/loadModelDir round-trip exactly and replace an existing folder atomically', async () => {
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const target = join(dir, 'run', 'model');
    const a = createDfdNet({ variant: 'att+eifp', width: 0.0625, miDims: [4, 4], miHidden: 8, seed: 1 });
    perturb(a, 20);
    await saveModelDir(a, target);
    const b = createDfdNet({ variant: 'att', width: 0.0625, seed: 2 });
    await saveModelDir(b, target);
    expect((await readdir(target)).sort()).toEqual(['model.json', 'weights.bin']);
    expect(await readdir(join(dir, 'run'))).toEqual(['model']);
    const loaded = await loadModelDir(target);
    expect(loaded.config).toEqual(b.config);
    expect(outputs(loaded, x)).toEqual(outputs(b, x));
    await saveModelDir(a, target);
    const la = await loadModelDir(target);
    expect(outputs(la, x)).toEqual(outputs(a, x));
    const json = JSON.parse(await readFile(join(target, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    await writeFile(join(target, 'weights.bin'), new Uint8Array(8));
    await expect(loadModelDir(target)).rejects.toThrow(/truncated/);
    await expect(loadModelDir(join(dir, 'missing'))).rejects.toThrow(/cannot read model.json/);
    [a, b, loaded, la].forEach((m) => m.dispose());
    x.dispose();
  });
});
