import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@dfd/core';
import { SYNTHETIC_DOMAINS, renderFace, sampleFaceParams } from '@dfd/datasets';
import { HUMAN_EMOTIONS, HUMAN_TO_CANONICAL, HumanEmotion, HumanFaceres, emotionInput, faceresInput, humanAge } from './human.js';
import { checkZooWeightBytes } from './models.js';
import { ZooNotInstalledError, findZooPackage, listZooModels, loadZooClassifier, loadZooExtractor, loadZooGraphModel } from './node.js';
import { GRAPH_RUNTIME, ZOO, installCommand, zooEntry } from './registry.js';

/**
 * The reference is Human itself: its Node build for the wasm backend
 * (@vladmandic/human/dist/human.node-wasm.js, which requires the same @tensorflow/tfjs-core,
 * -converter and -backend-wasm as dfd), run here with `backend: 'cpu'` on dfd's engine. Human has
 * no call that runs faceres or emotion on a face it did not detect, so the test runs its whole
 * pipeline (`human.detect`: blazeface, facemesh crop, then faceres and emotion) on an image and
 * records, at the boundary of Human's own loaded GraphModels, the exact input Human's
 * preprocessing made (faceres.ts `enhance()`, emotion.ts greyscale) and every raw output.
 * `face.detector.return` gives back the face crop Human fed both nets; dfd's zoo nets get that
 * crop as a dfd batch (ImageNet-normalised) and must reproduce Human's inputs and outputs.
 */
interface HumanFace {
  tensor?: tf.Tensor3D;
  age?: number;
  gender?: string;
  genderScore?: number;
  embedding?: number[];
  emotion?: Array<{ score: number; emotion: string }>;
}
interface HumanLib {
  load(): Promise<void>;
  detect(input: tf.Tensor, config?: unknown): Promise<{ face: HumanFace[]; error?: string | null }>;
  models: { models: Record<string, { execute(i: tf.Tensor, o?: unknown): tf.Tensor | tf.Tensor[]; inputs: Array<{ shape?: number[] }> } | null> };
}
interface Call {
  input: Float32Array;
  inputShape: number[];
  outputs: Array<{ shape: number[]; data: Float32Array }>;
}

const require = createRequire(import.meta.url);
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
let human: HumanLib;
let server: Server;
let humanDir: string;
const calls: Record<'faceres' | 'emotion', Call[]> = { faceres: [], emotion: [] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A face crop in 0..1 (what Human's detector returns) as a dfd batch: ImageNet mean/std. */
function asDfdBatch(crop01: tf.Tensor3D): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(tf.expandDims(crop01, 0), MEAN), STD));
}

/** Runs Human on one RGB image (0..255) and returns its one face with the recorded net calls. */
async function humanOnImage(image: tf.Tensor4D): Promise<{ face: HumanFace; faceres: Call; emotion: Call } | null> {
  calls.faceres.length = 0;
  calls.emotion.length = 0;
  const res = await human.detect(image);
  expect(res.error ?? null).toBeNull();
  if (res.face.length !== 1) {
    for (const f of res.face) f.tensor?.dispose();
    return null;
  }
  expect(calls.faceres).toHaveLength(1);
  expect(calls.emotion).toHaveLength(1);
  return { face: res.face[0]!, faceres: calls.faceres[0]!, emotion: calls.emotion[0]! };
}

/** Deterministic synthetic faces (dfd's renderer) at 256 px in 0..255, one per image. */
function syntheticImages(n: number, seed: number): tf.Tensor4D[] {
  const rng = new Rng(seed);
  const domains = Object.values(SYNTHETIC_DOMAINS);
  return Array.from({ length: n }, (_, i) => {
    const d = domains[i % domains.length]!;
    const img = renderFace(d, sampleFaceParams(d, rng), 256);
    return tf.tensor4d(Float32Array.from(img.data), [1, 256, 256, 3]);
  });
}

/** Checks dfd's zoo nets against Human's recorded calls on each face; returns the faces checked. */
async function checkAgainstHuman(images: tf.Tensor4D[], faceres: HumanFaceres, emotion: HumanEmotion): Promise<number> {
  const crops: tf.Tensor3D[] = [];
  const refs: Array<{ face: HumanFace; faceres: Call; emotion: Call }> = [];
  for (const image of images) {
    const r = await humanOnImage(image);
    if (!r) continue;
    crops.push(r.face.tensor!);
    refs.push(r);
  }
  for (let i = 0; i < refs.length; i++) {
    const { face, faceres: fr, emotion: em } = refs[i]!;
    const x = asDfdBatch(crops[i]!);
    // Human's preprocessing, replicated: the nets' inputs agree (0..255 and -1..1 scales).
    const fin = faceresInput(x, 224);
    expect(fin.shape).toEqual(fr.inputShape);
    expect(maxAbsDiff(fin.dataSync(), fr.input)).toBeLessThan(1e-3);
    const ein = emotionInput(x, 64);
    expect(ein.shape).toEqual(em.inputShape);
    expect(maxAbsDiff(ein.dataSync(), em.input)).toBeLessThan(1e-5);
    // Every output within 1e-4.
    const out = faceres.outputs(x);
    const ref = (w: number) => fr.outputs.find((o) => o.shape[1] === w)!.data;
    expect(maxAbsDiff(out.descriptor.dataSync(), ref(1024))).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.descriptor.dataSync(), face.embedding!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.age.dataSync(), ref(100))).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.gender.dataSync(), ref(1))).toBeLessThan(1e-4);
    expect(humanAge(out.age.dataSync())).toBeCloseTo(face.age!, 5);
    const g = out.gender.dataSync()[0]!;
    if (face.gender !== 'unknown') expect(face.gender).toBe(g <= 0.5 ? 'female' : 'male');
    const p = emotion.probabilities(x).dataSync();
    expect(maxAbsDiff(p, em.outputs[0]!.data)).toBeLessThan(1e-4);
    // Canonical order: softmax(logits) puts Human's probability of each label at its canonical index.
    const canon = tf.softmax(emotion.forward(x).logits).dataSync();
    const top = face.emotion![0]!;
    const humanTop = HUMAN_EMOTIONS.indexOf(top.emotion as (typeof HUMAN_EMOTIONS)[number]);
    expect(canon[HUMAN_TO_CANONICAL.indexOf(humanTop)]).toBeCloseTo(p[humanTop]!, 5);
    expect(Math.min(0.99, Math.trunc(100 * p[humanTop]!) / 100)).toBe(top.score);
    tf.dispose([x, fin, ein, out.descriptor, out.age, out.gender]);
  }
  // The same faces as one batch give the same numbers.
  if (refs.length > 1) {
    const batch = tf.tidy(() => tf.concat(crops.map((c) => asDfdBatch(c))));
    const emb = faceres.forward(batch).embedding;
    expect(emb.shape).toEqual([refs.length, 1024]);
    const all = refs.flatMap((r) => [...r.faceres.outputs.find((o) => o.shape[1] === 1024)!.data]);
    expect(maxAbsDiff(emb.dataSync(), all)).toBeLessThan(1e-4);
    const logits = emotion.forward(batch).logits;
    expect(logits.shape).toEqual([refs.length, 7]);
    tf.dispose([batch, emb, logits]);
  }
  tf.dispose(crops);
  return refs.length;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  humanDir = findZooPackage(zooEntry('human:faceres'))!.dir;
  // Human's Node builds read models over HTTP (fetch); serve its models folder on loopback.
  const models = join(humanDir, 'models');
  server = createServer((req, res) => {
    const file = join(models, basename(decodeURIComponent(new URL(req.url!, 'http://x').pathname)));
    if (!existsSync(file)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    res.end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const lib = require(join(humanDir, 'dist/human.node-wasm.js')) as { Human: new (config: unknown) => HumanLib };
  const off = { enabled: false };
  human = new lib.Human({
    backend: 'cpu',
    modelBasePath: `http://127.0.0.1:${port}/`,
    debug: false,
    cacheSensitivity: 0,
    filter: off,
    face: { enabled: true, detector: { return: true }, mesh: { enabled: true }, iris: off, emotion: { enabled: true }, description: { enabled: true }, antispoof: off, liveness: off },
    body: off,
    hand: off,
    object: off,
    gesture: off,
    segmentation: off,
  });
  await human.load();
  await tf.setBackend('cpu');
  for (const name of ['faceres', 'emotion'] as const) {
    const model = human.models.models[name]!;
    const execute = model.execute.bind(model);
    model.execute = (input: tf.Tensor, outputs?: unknown) => {
      const out = execute(input, outputs);
      const list = Array.isArray(out) ? out : [out];
      calls[name].push({ input: input.dataSync() as Float32Array, inputShape: input.shape, outputs: list.map((t) => ({ shape: t.shape, data: t.dataSync() as Float32Array })) });
      return out;
    };
  }
}, 120_000);

afterAll(() => {
  server?.close();
});

describe('Human entries in the registry', () => {
  it('human:faceres is an EIFE (1024-d), human:emotion a classifier; installing needs Human and tfjs-converter', async () => {
    expect(zooEntry('human:faceres')).toMatchObject({ roles: ['eife'], inputSize: 224, embedDim: 1024, format: 'graph-model', package: '@vladmandic/human' });
    expect(zooEntry('human:emotion')).toMatchObject({ roles: ['classifier'], inputSize: 64, format: 'graph-model' });
    expect(ZOO.some((e) => e.id.startsWith('human:gear'))).toBe(false);
    expect(installCommand(zooEntry('human:emotion'))).toBe('npm install @vladmandic/human@3.3.6 @tensorflow/tfjs-converter@4.22.0');
    const missing = new ZooNotInstalledError(zooEntry('human:faceres'), GRAPH_RUNTIME);
    expect(missing.code).toBe('E_ZOO_NOT_INSTALLED');
    expect(missing.message).toContain('needs the npm package @tensorflow/tfjs-converter (^4.22.0)');
    expect(missing.message).toContain('npm install @vladmandic/human@3.3.6 @tensorflow/tfjs-converter@4.22.0');
    // Human's exports hide its package.json; the zoo still finds it, and not from a folder without node_modules.
    expect(findZooPackage(zooEntry('human:faceres'), '/')).toBeNull();
    const list = await listZooModels();
    const row = list.find((e) => e.id === 'human:faceres')!;
    expect(row).toMatchObject({ installed: true, version: (JSON.parse(readFileSync(join(humanDir, 'package.json'), 'utf8')) as { version: string }).version });
    expect(row.bytes).toBe(readFileSync(join(humanDir, 'models/faceres.bin')).byteLength);
  });

  it("the label order is Human's, as its dist sets it for a greyscale emotion net, and maps to canonical", () => {
    const dist = readFileSync(join(humanDir, 'dist/human.node-wasm.js'), 'utf8');
    // emotion.ts load(): rgb = input has 3 channels; rgb ? affectnet order : greyscale (oarriaga) order.
    const esc = (l: readonly string[]) => JSON.stringify(l).replace(/[[\]]/g, '\\$&');
    const affectnet = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'];
    expect(dist).toMatch(new RegExp(`===3,\\w+\\?\\w+=${esc(affectnet)}:\\w+=${esc(HUMAN_EMOTIONS)}`));
    // canonical: surprise, fear, disgust, happiness, sadness, anger, neutral
    expect(HUMAN_TO_CANONICAL.map((i) => HUMAN_EMOTIONS[i])).toEqual(['surprise', 'fear', 'disgust', 'happy', 'sad', 'angry', 'neutral']);
  });

  it('rejects a truncated graph shard and a net of the wrong role', async () => {
    const model = JSON.parse(readFileSync(join(humanDir, 'models/emotion.json'), 'utf8')) as { weightsManifest: Parameters<typeof checkZooWeightBytes>[0] };
    const bin = readFileSync(join(humanDir, 'models/emotion.bin'));
    expect(() => checkZooWeightBytes(model.weightsManifest, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength))).not.toThrow();
    expect(() => checkZooWeightBytes(model.weightsManifest, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength - 4))).toThrow(/truncated/);
    await expect(loadZooExtractor('human:emotion')).rejects.toThrow(/cannot be used as an EIFE/);
    await expect(loadZooClassifier('human:faceres')).rejects.toThrow(/cannot be used as a classifier/);
  });
});

describe("Human's nets match Human's own inference", () => {
  let faceres: HumanFaceres;
  let emotion: HumanEmotion;
  beforeAll(async () => {
    faceres = (await loadZooExtractor('human:faceres')) as HumanFaceres;
    emotion = (await loadZooClassifier('human:emotion')) as HumanEmotion;
  });
  afterAll(() => {
    faceres?.dispose();
    emotion?.dispose();
  });

  it('loads as graph models with the input shapes Human reads', async () => {
    expect(faceres).toBeInstanceOf(HumanFaceres);
    expect(faceres.embedDim).toBe(1024);
    expect(emotion).toBeInstanceOf(HumanEmotion);
    const g = await loadZooGraphModel('human:emotion');
    expect(g.inputs[0]!.shape).toEqual([-1, 64, 64, 1]);
    g.dispose();
  });

  it('synthetic faces: descriptor, age, gender and emotion within 1e-4 of the outputs Human recorded, inputs equal', async () => {
    const images = syntheticImages(4, 1);
    const n = await checkAgainstHuman(images, faceres, emotion);
    expect(n).toBeGreaterThanOrEqual(3);
    tf.dispose(images);
  }, 120_000);

  it('frozen and leak-free: no parameters, tensors flat over a forward pass at any input size', () => {
    expect(faceres.namedParameters()).toEqual([]);
    const x = tf.randomNormal([2, 48, 48, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const emb = faceres.forward(x, { training: true }).embedding;
    const logits = emotion.forward(x).logits;
    expect(emb.shape).toEqual([2, 1024]);
    expect(logits.shape).toEqual([2, 7]);
    const s = tf.tidy(() => tf.sum(tf.softmax(logits), 1));
    expect(maxAbsDiff(s.dataSync(), [1, 1])).toBeLessThan(1e-5);
    tf.dispose([emb, logits, s]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

// Opt-in: real faces in ../shared/data (absent in CI and on users' machines).
const realDir = fileURLToPath(new URL('../../../../shared/data/taiwanese-faces', import.meta.url));
describe.skipIf(!existsSync(realDir))("Human's nets on real faces (local ../shared/data only)", () => {
  it("match Human's own inference on real photos within 1e-4", async () => {
    const sharp = (await import('sharp')).default;
    const files = readdirSync(realDir)
      .sort()
      .slice(0, 4)
      .flatMap((c) => readdirSync(join(realDir, c)).sort().slice(0, 1).map((f) => join(realDir, c, f)));
    const images: tf.Tensor4D[] = [];
    for (const f of files) {
      const { data, info } = await sharp(f).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      images.push(tf.tensor4d(Float32Array.from(data), [1, info.height, info.width, 3]));
    }
    const faceres = (await loadZooExtractor('human:faceres')) as HumanFaceres;
    const emotion = (await loadZooClassifier('human:emotion')) as HumanEmotion;
    expect(await checkAgainstHuman(images, faceres, emotion)).toBeGreaterThanOrEqual(files.length - 1);
    tf.dispose(images);
    faceres.dispose();
    emotion.dispose();
  }, 300_000);
});
