import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@dfd/core';
import { SYNTHETIC_DOMAINS, renderFace, sampleFaceParams } from '@dfd/datasets';
import { FaceapiDenseNet } from '@dfd/backbone';
import { ZOO, ZooRoleError, ZooUnknownError, installCommand, isZooId, zooEntry, zooEntryFor } from './registry.js';
import { ZooNotInstalledError, findZooPackage, listZooModels, loadZooClassifier, loadZooExtractor, loadZooWeights } from './node.js';
import { assignFaceapiTrunk, decodeZooWeights } from './models.js';
import { FACEAPI_TO_CANONICAL } from './nets.js';

/**
 * The reference is face-api itself (@vladmandic/face-api's Node build on @tensorflow/tfjs, a dev
 * dependency), run on the same engine and CPU backend: dfd's rebuilt nets must give its numbers.
 */
interface FaceapiLib {
  nets: Record<string, { loadFromDisk(dir: string): Promise<void>; forwardInput(i: unknown): unknown; computeFaceDescriptor(i: unknown): Promise<Float32Array> }>;
  toNetInput(t: unknown): Promise<unknown>;
}
const require = createRequire(import.meta.url);
let faceapi: FaceapiLib;
let modelDir: string;

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** Deterministic synthetic faces [N, size, size, 3] in 0..255 (what face-api takes). */
function faces(n: number, size: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  const data = new Float32Array(n * size * size * 3);
  const domains = Object.values(SYNTHETIC_DOMAINS);
  for (let i = 0; i < n; i++) {
    const d = domains[i % domains.length]!;
    const img = renderFace(d, sampleFaceParams(d, rng), size);
    for (let j = 0; j < img.data.length; j++) data[i * size * size * 3 + j] = img.data[j]!;
  }
  return tf.tensor4d(data, [n, size, size, 3]);
}

/** What dfd's data pipeline makes of the same pixels: /255, ImageNet mean/std. */
function imagenet(x255: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(tf.div(x255, 255), MEAN), STD));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  // face-api's Node build requires @tensorflow/tfjs; it shares tfjs-core's global engine with dfd.
  faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceapiLib;
  await tf.setBackend('cpu');
  modelDir = join(findZooPackage(zooEntry('faceapi:expression'))!.dir, 'model');
  for (const net of ['faceExpressionNet', 'faceRecognitionNet', 'ageGenderNet']) await faceapi.nets[net]!.loadFromDisk(modelDir);
});

describe('zoo registry', () => {
  it('names each model once, with a role and an install command', () => {
    expect(new Set(ZOO.map((e) => e.id)).size).toBe(ZOO.length);
    expect(isZooId('faceapi:recognition')).toBe(true);
    expect(isZooId('runs/eife1')).toBe(false);
    expect(installCommand(zooEntry('faceapi:age-gender'))).toBe('npm install @vladmandic/face-api@1.7.15');
    expect(() => zooEntry('faceapi:nope')).toThrow(ZooUnknownError);
    expect(() => zooEntry('faceapi:nope')).toThrow(/known: faceapi:expression, faceapi:recognition, faceapi:age-gender, faceapi:tiny-detector, faceapi:landmarks-tiny, human:faceres, human:emotion \(/);
    expect(() => zooEntryFor('faceapi:recognition', 'backbone')).toThrow(ZooRoleError);
    expect(() => zooEntryFor('faceapi:recognition', 'backbone')).toThrow(/backbones: faceapi:expression/);
  });

  it('lists the installed package version and shard sizes', async () => {
    const list = await listZooModels();
    const rec = list.find((e) => e.id === 'faceapi:recognition')!;
    expect(rec.installed).toBe(true);
    expect(rec.version).toBe((require('@vladmandic/face-api/package.json') as { version: string }).version);
    expect(rec.bytes).toBe(readFileSync(join(modelDir, 'face_recognition_model.bin')).byteLength);
  });

  it('a missing package gives the exact install command', () => {
    const err = new ZooNotInstalledError(zooEntry('faceapi:expression'));
    expect(err.code).toBe('E_ZOO_NOT_INSTALLED');
    expect(err.message).toContain('npm install @vladmandic/face-api@1.7.15');
    expect(findZooPackage(zooEntry('faceapi:expression'), '/')).toBeNull();
  });

  it('rejects a manifest that does not match its shard', () => {
    const manifest = JSON.parse(readFileSync(join(modelDir, 'face_expression_model-weights_manifest.json'), 'utf8'));
    const data = readFileSync(join(modelDir, 'face_expression_model.bin'));
    expect(() => decodeZooWeights(manifest, data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength - 7))).toThrow(/truncated or from another version/);
  });
});

describe('zoo nets match face-api inference', () => {
  it('expression: trunk + fc give face-api probabilities (canonical order) within 1e-4', async () => {
    const x = faces(3, 112, 1);
    const ref = faceapi.nets.faceExpressionNet!.forwardInput(await faceapi.toNetInput(tf.unstack(x))) as tf.Tensor2D;
    const refData = ref.dataSync();
    const clf = await loadZooClassifier('faceapi:expression');
    const xin = imagenet(x);
    const probs = tf.softmax(clf.forward(xin).logits);
    const got = probs.dataSync();
    const reordered = new Float32Array(got.length);
    for (let i = 0; i < 3; i++) for (let c = 0; c < 7; c++) reordered[i * 7 + FACEAPI_TO_CANONICAL[c]!] = got[i * 7 + c]!;
    expect(maxAbsDiff(reordered, refData)).toBeLessThan(1e-4);
    // Not trivially uniform: the net is confident about something.
    expect(Math.max(...Array.from(refData))).toBeGreaterThan(0.3);
    tf.dispose([x, ref, xin, probs]);
    clf.dispose();
  });

  it('recognition: the 128-d descriptor within 1e-4, at 150 px and resized from 112 px', async () => {
    const rec = await loadZooExtractor('faceapi:recognition');
    expect(rec.embedDim).toBe(128);
    for (const size of [150, 112]) {
      const x = faces(2, size, 2);
      const refs: number[] = [];
      for (let i = 0; i < 2; i++) {
        const xi = tf.slice(x, i, 1);
        refs.push(...(await faceapi.nets.faceRecognitionNet!.computeFaceDescriptor(xi)));
        xi.dispose();
      }
      const xin = imagenet(x);
      const emb = rec.forward(xin).embedding;
      expect(emb.shape).toEqual([2, 128]);
      expect(maxAbsDiff(emb.dataSync(), refs)).toBeLessThan(1e-4);
      tf.dispose([x, xin, emb]);
    }
    rec.dispose();
  });

  it('age-gender: the pooled 512-d features feed heads that give face-api age and gender', async () => {
    const x = faces(2, 112, 3);
    const ref = faceapi.nets.ageGenderNet!.forwardInput(await faceapi.toNetInput(tf.unstack(x))) as { age: tf.Tensor1D; gender: tf.Tensor2D };
    const weights = await loadZooWeights('faceapi:age-gender');
    const { ageGenderForward } = await import('./nets.js');
    const { imagenetToFaceapi } = await import('@dfd/backbone');
    const xin = imagenet(x);
    const out = ageGenderForward(weights, imagenetToFaceapi(xin));
    expect(out.features.shape).toEqual([2, 512]);
    expect(maxAbsDiff(out.age.dataSync(), ref.age.dataSync())).toBeLessThan(1e-3); // years
    expect(maxAbsDiff(out.gender.dataSync(), ref.gender.dataSync())).toBeLessThan(1e-4);
    const ext = await loadZooExtractor('faceapi:age-gender');
    const emb = ext.forward(xin).embedding;
    expect(maxAbsDiff(emb.dataSync(), out.features.dataSync())).toBe(0);
    tf.dispose([x, ref.age, ref.gender, xin, out.features, out.age, out.gender, emb, ...Object.values(weights)]);
    ext.dispose();
  });

  it('the age/gender trunk as a backbone (faceapi-xception): its last stage pooled = the age/gender features', async () => {
    const { FaceapiXceptionNet } = await import('@dfd/backbone');
    const { ageGenderForward } = await import('./nets.js');
    const { imagenetToFaceapi } = await import('@dfd/backbone');
    const net = new FaceapiXceptionNet();
    const weights = await loadZooWeights('faceapi:age-gender');
    expect(assignFaceapiTrunk(net, weights)).toBe(net.namedParameters().length);
    const x = imagenet(faces(2, 112, 5));
    const stages = net.forward(x, { training: false });
    expect(stages.map((s) => s.shape)).toEqual([
      [2, 56, 56, 32],
      [2, 28, 28, 64],
      [2, 14, 14, 128],
      [2, 7, 7, 512],
    ]);
    const pooled = tf.mean(stages[3], [1, 2]);
    const ref = ageGenderForward(weights, imagenetToFaceapi(x));
    expect(maxAbsDiff(pooled.dataSync(), ref.features.dataSync())).toBeLessThan(1e-4);
    expect(() => assignFaceapiTrunk(new FaceapiDenseNet(), weights)).toThrow(/another layout|has no parameter/);
    tf.dispose([x, ...stages, pooled, ref.features, ref.age, ref.gender, ...Object.values(weights)]);
    net.dispose();
  });

  it('the face-api trunk in DFD-Net: weights copied by name, four stages 56/28/14/7', async () => {
    const net = new FaceapiDenseNet();
    const weights = await loadZooWeights('faceapi:expression');
    expect(assignFaceapiTrunk(net, weights)).toBe(net.namedParameters().length);
    const x = imagenet(faces(1, 112, 4));
    const stages = net.forward(x, { training: false });
    expect(stages.map((s) => s.shape)).toEqual([
      [1, 56, 56, 32],
      [1, 28, 28, 64],
      [1, 14, 14, 128],
      [1, 7, 7, 256],
    ]);
    tf.dispose([x, ...stages, ...Object.values(weights)]);
    net.dispose();
  });
});

// Opt-in: the real faces in ../shared/data (absent in CI and on users' machines).
const realDir = fileURLToPath(new URL('../../../../shared/data/taiwanese-faces/happy', import.meta.url));
describe.skipIf(!existsSync(realDir))('zoo nets on real faces (local ../shared/data only)', () => {
  it('recognition and expression match face-api on real photos within 1e-4', async () => {
    const sharp = (await import('sharp')).default;
    const files = readdirSync(realDir).slice(0, 4);
    const rec = await loadZooExtractor('faceapi:recognition');
    const clf = await loadZooClassifier('faceapi:expression');
    for (const f of files) {
      const { data } = await sharp(join(realDir, f)).resize(150, 150).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const x = tf.tensor4d(Float32Array.from(data), [1, 150, 150, 3]);
      const ref = await faceapi.nets.faceRecognitionNet!.computeFaceDescriptor(x);
      const xin = imagenet(x);
      const emb = rec.forward(xin).embedding;
      expect(maxAbsDiff(emb.dataSync(), ref)).toBeLessThan(1e-4);
      const refP = faceapi.nets.faceExpressionNet!.forwardInput(await faceapi.toNetInput(x)) as tf.Tensor2D;
      const p = tf.softmax(clf.forward(xin).logits);
      const pd = p.dataSync();
      const back = new Float32Array(7);
      for (let c = 0; c < 7; c++) back[FACEAPI_TO_CANONICAL[c]!] = pd[c]!;
      expect(maxAbsDiff(back, refP.dataSync())).toBeLessThan(1e-4);
      tf.dispose([x, xin, emb, refP, p]);
    }
    rec.dispose();
    clf.dispose();
  });
});
