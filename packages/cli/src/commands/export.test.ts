import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { EXPRESSIONS } from '@dfd/core';
import { createDfdNet, createEife } from '@dfd/model';
import { loadModelDir, saveModelDir } from '@dfd/model/node';
import { runCli } from '../test-utils/run-cli.js';
import { copyFaceNets } from './export.js';

const work = mkdtempSync(join(tmpdir(), 'dfd-export-'));

describe('dfd export', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const net = createDfdNet({ variant: 'att', width: 1 / 16, inputSize: 40, seed: 5 });
    await saveModelDir(net, join(work, 'net'), { labels: EXPRESSIONS.map((e) => e.toUpperCase()) });
    net.dispose();
    const eife = createEife({ factors: [{ name: 'age', classes: 3 }], width: 1 / 16, inputSize: 40, embedDim: 8 });
    await saveModelDir(eife, join(work, 'eife'));
    eife.dispose();
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes model.json, weights.bin and a manifest with the saved labels, input size and ImageNet normalisation', async () => {
    const out = join(work, 'web');
    const r = await runCli(['export', '--model', join(work, 'net'), '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/exported DFD-Net att, width 0.0625 \(40x40, 7 labels/);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual({
      format: 'dfd-web',
      formatVersion: 1,
      model: 'model.json',
      labels: EXPRESSIONS.map((e) => e.toUpperCase()),
      inputSize: 40,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      description: 'DFD-Net att, width 0.0625',
      // @vladmandic/face-api is installed here (a dev dependency): the face nets travel with the model.
      faceDetector: 'faces/tiny_face_detector_model-weights_manifest.json',
      faceLandmarks: 'faces/face_landmark_68_tiny_model-weights_manifest.json',
    });
    expect(r.stdout).toMatch(/face detection: on \(faces\/tiny_face_detector_model-weights_manifest.json, faces\/face_landmark_68_tiny_model-weights_manifest.json; from @vladmandic\/face-api \d/);
    const faceapiModels = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'model');
    for (const f of ['tiny_face_detector_model.bin', 'face_landmark_68_tiny_model.bin']) expect(readFileSync(join(out, 'faces', f)).equals(readFileSync(join(faceapiModels, f))), f).toBe(true);
    for (const f of ['tiny_face_detector_model-weights_manifest.json', 'face_landmark_68_tiny_model-weights_manifest.json']) {
      expect(JSON.parse(readFileSync(join(out, 'faces', f), 'utf8')), f).toEqual(JSON.parse(readFileSync(join(faceapiModels, f), 'utf8')));
    }
    // The exported folder is a model folder too: same tensors, bit for bit.
    const [a, b] = await Promise.all([loadModelDir(join(work, 'net')), loadModelDir(out)]);
    const sa = a.namedState();
    const sb = new Map(b.namedState());
    expect(sa.length).toBeGreaterThan(10);
    for (const [name, v] of sa) expect(Array.from(await sb.get(name)!.data()), name).toEqual(Array.from(await v.data()));
    a.dispose();
    b.dispose();
  });

  it('--no-faces leaves detection off: no faces/ folder, a manifest without the face fields', async () => {
    const out = join(work, 'web-nofaces');
    const r = await runCli(['export', '--model', join(work, 'net'), '--out', out, '--no-faces']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/face detection: off \(--no-faces\); the app centre-crops the photo/);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.faceDetector).toBeUndefined();
    expect(manifest.faceLandmarks).toBeUndefined();
    expect(existsSync(join(out, 'faces'))).toBe(false);
  });

  it('without @vladmandic/face-api, face detection is off with the command that turns it on', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'dfd-export-nofaceapi-'));
    try {
      const faces = await copyFaceNets(join(empty, 'out'), empty);
      expect(faces).toEqual({ on: false, reason: '@vladmandic/face-api is not installed; to turn it on: npm install @vladmandic/face-api@1.7.15, then re-run dfd export' });
      expect(existsSync(join(empty, 'out'))).toBe(false);
      // Resolved from a folder that has it (this checkout), it is on.
      expect(await copyFaceNets(join(empty, 'out'), dirname(fileURLToPath(import.meta.url)))).toMatchObject({ on: true, detector: 'faces/tiny_face_detector_model-weights_manifest.json' });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

    it('copies a built app next to the model with --app', async () => {
    const app = join(work, 'app');
    mkdirSync(join(app, 'assets'), { recursive: true });
    writeFileSync(join(app, 'index.html'), '<!doctype html><title>app</title>');
    writeFileSync(join(app, 'assets', 'main.js'), 'console.log(1)');
    const out = join(work, 'site');
    const r = await runCli(['export', '--model', join(work, 'net'), '--out', out, '--app', app]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<title>app</title>');
    expect(readFileSync(join(out, 'assets', 'main.js'), 'utf8')).toBe('console.log(1)');
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).inputSize).toBe(40);
  });

  it("--app never replaces a user's index.html unless the folder is a dfd export or --overwrite is given (issue 24)", async () => {
    const app = join(work, 'app2');
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'index.html'), '<!doctype html><title>app</title>');
    const out = join(work, 'homepage');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'index.html'), '<h1>my page</h1>');
    const r = await runCli(['export', '--model', join(work, 'net'), '--out', out, '--app', app]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--out ${out}: it is not a folder dfd exported (no dfd manifest.json) and holds index.html, which the export would replace; nothing was written.`);
    expect(r.stderr).toContain('--overwrite');
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toBe('<h1>my page</h1>');
    expect(existsSync(join(out, 'model.json'))).toBe(false);
    // Exporting into an empty folder, then again into that dfd export, is fine; --overwrite replaces the user's page.
    const fresh = join(work, 'fresh-site');
    expect((await runCli(['export', '--model', join(work, 'net'), '--out', fresh, '--app', app, '--no-faces'])).code).toBe(0);
    expect((await runCli(['export', '--model', join(work, 'net'), '--out', fresh, '--app', app, '--no-faces'])).code).toBe(0);
    expect((await runCli(['export', '--model', join(work, 'net'), '--out', out, '--app', app, '--no-faces', '--overwrite'])).code).toBe(0);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<title>app</title>');
  });

  it('rejects a missing folder, a non-classifier model and an app folder without index.html', async () => {
    const missing = await runCli(['export', '--model', join(work, 'nope'), '--out', join(work, 'x')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--model .*nope: no such folder/);
    const eife = await runCli(['export', '--model', join(work, 'eife'), '--out', join(work, 'x')]);
    expect(eife.code).toBe(1);
    expect(eife.stderr).toMatch(/'eife' model, but the web app needs an expression classifier/);
    const noApp = await runCli(['export', '--model', join(work, 'net'), '--out', join(work, 'y'), '--app', join(work, 'eife')]);
    expect(noApp.code).toBe(1);
    expect(noApp.stderr).toMatch(/no index.html there; build the app first/);
  });
});
