import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DfdNet, ModelDirRefusedError, ModelFormatError, NonFiniteWeightsError, createBackboneModel, createDfdNet, createEife, loadModelFromUrl, modelFromArtifacts, modelToArtifacts, modelFraming, setModelFraming, type DfdModel } from './index.js';
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

describe('model folders dfd did not write (issue 24)', () => {
  it("saveModelDir refuses a folder holding a user's files or a regular file, and replaces a dfd model folder or an empty one", async () => {
    const m = createDfdNet({ variant: 'base', width: 0.0625, seed: 9 });
    const users = join(dir, 'i24', 'users');
    await mkdir(join(users, 'sub'), { recursive: true });
    await writeFile(join(users, 'sub', 'thesis.tex'), 'a');
    await writeFile(join(users, 'notes.md'), 'b');
    const err = await saveModelDir(m, users).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelDirRefusedError);
    expect((err as ModelDirRefusedError).code).toBe('E_MODEL_OUT');
    expect((err as ModelDirRefusedError).foreign.sort()).toEqual(['notes.md', 'sub/']);
    expect((err as Error).message).toMatch(/holds files dfd did not write.*--overwrite/);
    expect(await readFile(join(users, 'sub', 'thesis.tex'), 'utf8')).toBe('a');
    expect(await readdir(join(dir, 'i24'))).toEqual(['users']);
    // A dfd model folder with a stray file beside its weights is not "ours" either.
    const model = join(dir, 'i24', 'model');
    await saveModelDir(m, model);
    await saveModelDir(m, model);
    await writeFile(join(model, 'README.txt'), 'mine');
    expect(await saveModelDir(m, model).catch((e: unknown) => e)).toBeInstanceOf(ModelDirRefusedError);
    await saveModelDir(m, model, { overwrite: true });
    expect((await readdir(model)).sort()).toEqual(['model.json', 'weights.bin']);
    // A folder with a model.json that is not dfd's is refused whole.
    const foreign = join(dir, 'i24', 'tfjs');
    await mkdir(foreign);
    await writeFile(join(foreign, 'model.json'), '{"format":"layers-model"}');
    expect(String(await saveModelDir(m, foreign).catch((e: unknown) => e))).toMatch(/did not write \(model\.json\)/);
    // An empty folder is replaced; a regular file never is, even with overwrite.
    const empty = join(dir, 'i24', 'empty');
    await mkdir(empty);
    await saveModelDir(m, empty);
    const file = join(dir, 'i24', 'file');
    await writeFile(file, 'keep');
    for (const overwrite of [false, true]) {
      const e = await saveModelDir(m, file, { overwrite }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ModelDirRefusedError);
      expect((e as Error).message).toMatch(/is a file, not a model folder/);
    }
    expect(await readFile(file, 'utf8')).toBe('keep');
    m.dispose();
  });
});

describe('hostile and diverged model files (issue 17)', () => {
  it('a model with NaN or infinite weights is never written, and the folder it would replace is untouched', async () => {
    const target = join(dir, 'nan', 'model');
    const good = createDfdNet({ variant: 'base', width: 0.0625, seed: 3 });
    await saveModelDir(good, target);
    const before = await readFile(join(target, 'weights.bin'));
    const bad = createDfdNet({ variant: 'base', width: 0.0625, seed: 4 });
    const w = bad.namedParameters().find(([n]) => n === 'classifier.weight')![1];
    w.assign(tf.tidy(() => tf.fill(w.shape, Number.NaN)));
    const err = await saveModelDir(bad, target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteWeightsError);
    expect((err as NonFiniteWeightsError).weights).toEqual(['classifier.weight']);
    expect((err as NonFiniteWeightsError).count).toBe(w.size);
    expect((err as Error).message).toMatch(/non-finite weight value.*classifier\.weight.*not written/);
    expect((await readFile(join(target, 'weights.bin'))).equals(before)).toBe(true);
    expect((await readdir(join(dir, 'nan'))).sort()).toEqual(['model']);
    [good, bad].forEach((m) => m.dispose());
  });

  it('loading a weights file holding NaN or infinity fails with NonFiniteWeightsError naming the weights', async () => {
    const target = join(dir, 'nan-load');
    const m = createDfdNet({ variant: 'base', width: 0.0625, seed: 5 });
    await saveModelDir(m, target);
    const bytes = new Uint8Array(await readFile(join(target, 'weights.bin')));
    const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    floats[0] = Number.NaN;
    floats[floats.length - 1] = Number.POSITIVE_INFINITY;
    await writeFile(join(target, 'weights.bin'), bytes);
    const before = tf.memory().numTensors;
    const err = await loadModelDir(target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteWeightsError);
    expect((err as NonFiniteWeightsError).count).toBe(2);
    expect((err as NonFiniteWeightsError).weights[0]).toBe('efe.stem.conv.weight');
    expect((err as Error).message).toMatch(/model\.json: 2 non-finite weight value.*unusable/);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it("weight paths are confined to the model folder: '..', absolute paths, symlinks out and devices are refused before reading", async () => {
    const root = join(dir, 'confine');
    const other = join(root, 'other', 'model');
    const victim = join(root, 'victim', 'model');
    const m = createDfdNet({ variant: 'base', width: 0.0625, seed: 6 });
    await saveModelDir(m, other);
    await saveModelDir(m, victim);
    const json = JSON.parse(await readFile(join(victim, 'model.json'), 'utf8'));
    const withPaths = async (paths: string[]) => {
      await writeFile(join(victim, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths }] }));
      return loadModelDir(victim).catch((e: unknown) => e);
    };
    for (const p of ['../../other/model/weights.bin', '../../../../dev/zero', join(other, 'weights.bin'), '/dev/zero', 'sub/../../x.bin']) {
      const err = await withPaths([p]);
      expect(err, p).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message, p).toMatch(/must be a relative path inside the model folder/);
    }
    await symlink(join(other, 'weights.bin'), join(victim, 'link.bin'));
    expect(String(await withPaths(['link.bin']))).toMatch(/leads outside the model folder/);
    await symlink('/dev/zero', join(victim, 'zero.bin'));
    expect(String(await withPaths(['zero.bin']))).toMatch(/leads outside the model folder/);
    await mkdir(join(victim, 'dir.bin'));
    expect(String(await withPaths(['dir.bin']))).toMatch(/not a regular file/);
    // A longer file is refused from its size, before it is read.
    await writeFile(join(victim, 'big.bin'), new Uint8Array(json.weightsManifest[0].weights.reduce((s: number, w: { shape: number[] }) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0) + 4));
    expect(String(await withPaths(['big.bin']))).toMatch(/hold \d+ bytes but the manifest describes \d+/);
    // Inside the folder (even through a symlink that stays inside) is fine.
    await symlink('weights.bin', join(victim, 'inside.bin'));
    const ok = await withPaths(['inside.bin']);
    expect(ok).toBeInstanceOf(DfdNet);
    (ok as DfdNet).dispose();
    m.dispose();
  });

  it('loadModelFromUrl refuses weight paths leaving the folder of model.json', async () => {
    const m = createDfdNet({ variant: 'base', width: 0.0625, seed: 7 });
    const { modelJson, weights } = await modelToArtifacts(m);
    const seen: string[] = [];
    for (const p of ['../other/weights.bin', 'http://evil/weights.bin', '%2e%2e/x.bin', '/weights.bin']) {
      const json = { ...modelJson, weightsManifest: [{ ...modelJson.weightsManifest[0]!, paths: [p] }] };
      const f = (async (u: string) => {
        seen.push(u);
        return u.endsWith('model.json') ? new Response(JSON.stringify(json)) : new Response(weights);
      }) as typeof fetch;
      await expect(loadModelFromUrl('http://host/m/model.json', { fetch: f }), p).rejects.toThrow(/must be a relative path beside model\.json/);
    }
    expect(seen.every((u) => u === 'http://host/m/model.json')).toBe(true);
    m.dispose();
  });
});

describe('model.json framing', () => {
  it('is written when recorded, read back, absent otherwise, and a bad one is refused', async () => {
    const m = createBackboneModel({ width: 0.0625, layout: 'torchvision' });
    try {
      const plain = await modelToArtifacts(m);
      expect(plain.modelJson.framing).toBeUndefined();
      expect(modelFraming(modelFromArtifacts(JSON.parse(JSON.stringify(plain.modelJson)), plain.weights))).toBeUndefined();
      setModelFraming(m, { kind: 'align', size: 96 });
      const { modelJson, weights } = await modelToArtifacts(m);
      expect(modelJson.framing).toEqual({ kind: 'align', size: 96 });
      const back = modelFromArtifacts(JSON.parse(JSON.stringify(modelJson)), weights);
      expect(modelFraming(back)).toEqual({ kind: 'align', size: 96 });
      back.dispose();
      expect(() => modelFromArtifacts({ ...modelJson, framing: 'align' }, weights)).toThrow(/'framing' must be an object/);
    } finally {
      m.dispose();
    }
  });
});
