import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import sharp from 'sharp';
import type { BrowserContext, Page } from 'playwright-core';
import { main as dfdMain } from '@dfd/cli';
import { EXPRESSIONS } from '@dfd/core';
import { createDfdNet } from '@dfd/model';
import { saveModelDir } from '@dfd/model/node';
import { cropFace, eyeCentres, zooEntry, type FaceBox } from '@dfd/zoo';
import { findZooPackage, loadZooDetector, loadZooLandmarker } from '@dfd/zoo/node';
import { prepareFaceInput } from '../src/faces.js';
import { centreCropBox, prepareInput, softmax } from '../src/preprocess.js';
import { runTrainingDemo, TRAIN_DEMO_DEFAULTS } from '../src/train-core.js';
import { chromiumMissingReason, launchChromium, rgbToY4m } from './chromium.js';
import { faceScene, fixtureImage, maxAbsDiff, TINY } from './fixtures.js';
import { serveStatic, type StaticServer } from './serve.js';

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = join(webDir, 'test-artifacts');
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const TRAIN_STEPS = 3;
const CLASSIFIER_SCALE = 100;
// 32 px instead of the page's 48: SwiftShader runs every WebGPU kernel on the CPU.
const TRAIN_SIZE = 32;

const skipReason = chromiumMissingReason();
if (skipReason) console.warn(`[dfd web] browser tests SKIPPED: ${skipReason}`);
// The face detection test needs the zoo detector's weights (@vladmandic/face-api, a dev dependency).
const facesMissing = findZooPackage(zooEntry('faceapi:tiny-detector')) ? undefined : '@vladmandic/face-api is not installed';
if (!skipReason && facesMissing) console.warn(`[dfd web] face detection browser test SKIPPED: ${facesMissing}`);

describe.skipIf(skipReason !== undefined)('web app in real Chromium (WebGPU on SwiftShader)', () => {
  let tmp: string;
  let server: StaticServer;
  let browser: { context: BrowserContext; close(): Promise<void> };
  let inputSize: number;
  let cpuProbs: number[];
  let otherProbs: number[];
  let facePng: string;
  let scenePng: string;
  let sceneRef: { box: FaceBox; probs: number[] } | undefined;
  let facesServer: StaticServer | undefined;
  const pageLog: string[] = [];

  beforeAll(async () => {
    await tf.setBackend('cpu');
    tmp = mkdtempSync(join(tmpdir(), 'dfd-web-test-'));
    mkdirSync(artifacts, { recursive: true });

    // 1. A tiny model saved the way `dfd train` saves it, and its CPU prediction on the fixture.
    const model = createDfdNet(TINY);
    inputSize = model.config.inputSize;
    // A freshly initialised net has tiny features, so its probabilities sit near 1/7 whatever the
    // input; scaled classifier weights make them depend on the picture, so the check can fail.
    const classifier = model.namedParameters().find(([name]) => name === 'classifier.weight')![1];
    classifier.assign(tf.tidy(() => tf.mul(classifier, CLASSIFIER_SCALE)));
    await saveModelDir(model, join(tmp, 'model'));
    const face = fixtureImage(inputSize + 37, inputSize + 11);
    facePng = join(tmp, 'face.png');
    await sharp(Buffer.from(face.data), { raw: { width: face.width, height: face.height, channels: 4 } }).png().toFile(facePng);
    // The reference decodes the PNG independently of the browser (sharp, not canvas).
    const predictPng = async (png: Buffer | string) => {
      const decoded = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const img = { data: new Uint8Array(decoded.data), width: decoded.info.width, height: decoded.info.height };
      const input = prepareInput(img, centreCropBox(img.width, img.height), inputSize, IMAGENET_MEAN, IMAGENET_STD);
      const logits = tf.tidy(() => model.forward(tf.tensor4d(input, [1, inputSize, inputSize, 3]), { training: false }).logits);
      const probs = softmax(await logits.data());
      logits.dispose();
      return probs;
    };
    cpuProbs = await predictPng(facePng);
    otherProbs = await predictPng(await sharp(facePng).negate({ alpha: false }).png().toBuffer());
    // A photo with an off-centre face, and what Node makes of it: detect, level the eyes, crop, predict.
    const scene = faceScene().image;
    scenePng = join(tmp, 'scene.png');
    await sharp(Buffer.from(scene.data), { raw: { width: scene.width, height: scene.height, channels: 3 } }).png().toFile(scenePng);
    writeFileSync(join(tmp, 'scene.y4m'), rgbToY4m(scene));
    if (!facesMissing) {
      const [detector, landmarker] = [await loadZooDetector(), await loadZooLandmarker()];
      const box = (await detector.detect(scene, { inputSize: 416, scoreThreshold: 0.5 }))[0]!;
      const crop = cropFace(scene, box, { margin: 0.2, eyes: eyeCentres(await landmarker.landmarks(scene, box)) });
      const input = prepareFaceInput(crop, inputSize, IMAGENET_MEAN, IMAGENET_STD);
      const logits = tf.tidy(() => model.forward(tf.tensor4d(input, [1, inputSize, inputSize, 3]), { training: false }).logits);
      sceneRef = { box, probs: softmax(await logits.data()) };
      logits.dispose();
      detector.dispose();
      landmarker.dispose();
    }
    model.dispose();

    // 2. Build the app, then export model + app with the real CLI, as a user would.
    const { build } = await import('vite');
    await build({ configFile: join(webDir, 'vite.config.ts'), logLevel: 'warn', build: { outDir: join(tmp, 'app'), emptyOutDir: true } });
    // Without face detection the page centre-crops, as these tests expect; with it, a second site.
    const code = await dfdMain(['node', 'dfd', 'export', '--model', join(tmp, 'model'), '--out', join(tmp, 'site'), '--app', join(tmp, 'app'), '--no-faces']);
    expect(code, 'dfd export exit code').toBe(0);
    if (!facesMissing) {
      const facesCode = await dfdMain(['node', 'dfd', 'export', '--model', join(tmp, 'model'), '--out', join(tmp, 'site-faces'), '--app', join(tmp, 'app')]);
      expect(facesCode, 'dfd export (faces) exit code').toBe(0);
      facesServer = await serveStatic(join(tmp, 'site-faces'));
    }

    // 3. Serve it and start Chromium.
    server = await serveStatic(join(tmp, 'site'));
    browser = await launchChromium({ fakeCamera: join(tmp, 'scene.y4m') });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await facesServer?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function open(path: string, init?: () => void, base = server.url): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`[pageerror] ${e.message}`));
    if (init) await page.addInitScript(init);
    await page.goto(base + path);
    return page;
  }

  /** Wait until `done()` holds in the page; fail early, with the page's log, if it shows an error. */
  async function waitFor(page: Page, done: () => boolean, timeout = 60_000): Promise<void> {
    try {
      await page.waitForFunction(`document.body.dataset.state === 'error' || (${done.toString()})()`, undefined, { timeout });
    } catch (err) {
      throw new Error(`${(err as Error).message}\npage log:\n${pageLog.join('\n')}`);
    }
    if ((await page.evaluate(() => document.body.dataset.state)) === 'error') {
      throw new Error(`page failed: ${await page.textContent('#error')}\npage log:\n${pageLog.join('\n')}`);
    }
  }

  async function waitForState(page: Page): Promise<void> {
    await waitFor(page, () => document.body.dataset.state === 'ready');
  }

  it('export wrote the manifest the app reads', () => {
    const manifest = JSON.parse(readFileSync(join(tmp, 'site', 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'dfd-web', formatVersion: 1, model: 'model.json', inputSize, labels: [...EXPRESSIONS] });
    expect(manifest.mean).toEqual(IMAGENET_MEAN);
    expect(manifest.std).toEqual(IMAGENET_STD);
  });

  it('predicts on WebGPU with the same probabilities as Node on the CPU backend', async () => {
    const page = await open('index.html');
    await waitForState(page);
    expect(await page.textContent('#backend')).toBe('webgpu');
    // Exported with --no-faces: no detector in the manifest, the page centre-crops as before.
    expect(await page.evaluate(() => document.body.dataset.detection)).toBe('off');
    expect(await page.textContent('#model-info')).toMatch(/face detection: off \(no detector in this model folder/);
    await page.setInputFiles('#file', facePng);
    await waitFor(page, () => document.body.dataset.predictions === '1');
    const probs = JSON.parse((await page.getAttribute('#bars', 'data-probs')) ?? 'null') as number[] | null;
    expect(probs, pageLog.join('\n')).not.toBeNull();
    expect(probs).toHaveLength(7);
    // The reference is sensitive: a colour-inverted picture moves the probabilities far more than 1e-3.
    expect(maxAbsDiff(otherProbs, cpuProbs)).toBeGreaterThan(1e-2);
    const diff = maxAbsDiff(probs!, cpuProbs);
    console.log(`[dfd web] WebGPU vs Node CPU probabilities: max |diff| = ${diff.toExponential(2)}; cpu = ${cpuProbs.map((p) => p.toFixed(4)).join(' ')}; inverted = ${otherProbs.map((p) => p.toFixed(4)).join(' ')}`);
    expect(diff).toBeLessThan(1e-3);
    const top = cpuProbs.indexOf(Math.max(...cpuProbs));
    expect(await page.textContent('#label')).toBe(EXPRESSIONS[top]);
    await page.screenshot({ path: join(artifacts, 'predict-webgpu.png'), fullPage: true });

    // A tighter face crop re-runs the network on the same photo: different input, no leaked tensors.
    const tensors = await page.evaluate(() => document.body.dataset.tensors);
    await page.locator('#crop').fill('0.8');
    await waitFor(page, () => document.body.dataset.predictions === '2');
    expect(await page.evaluate(() => document.body.dataset.tensors)).toBe(tensors);
    const cropped = JSON.parse((await page.getAttribute('#bars', 'data-probs')) ?? 'null') as number[];
    expect(maxAbsDiff(cropped, probs!)).toBeGreaterThan(1e-4);

    // Drag and drop of the same file, back at the full centre crop: the first answer again.
    await page.locator('#crop').fill('1');
    await waitFor(page, () => document.body.dataset.predictions === '3');
    const png = readFileSync(facePng).toString('base64');
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      document.getElementById('drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, png);
    await waitFor(page, () => document.body.dataset.predictions === '4');
    const dropped = JSON.parse((await page.getAttribute('#bars', 'data-probs')) ?? 'null') as number[];
    expect(maxAbsDiff(dropped, cpuProbs)).toBeLessThan(1e-3);
    await page.close();
  });

  it.skipIf(facesMissing !== undefined)('detects the face of an upload, draws its box with the label, predicts on its crop; no face: centre crop', async () => {
    // WASM: SwiftShader's WebGPU takes ~70 s for the detector's kernels; the other tests cover WebGPU.
    const page = await open('index.html?backend=wasm', undefined, facesServer!.url);
    await waitForState(page);
    expect(await page.textContent('#backend')).toBe('wasm');
    expect(await page.evaluate(() => document.body.dataset.detection)).toBe('on');
    expect(await page.textContent('#model-info')).toMatch(/face detection: on \(416 px detector, eyes levelled\)/);
    await page.setInputFiles('#file', scenePng);
    await waitFor(page, () => document.body.dataset.predictions === '1');
    const found = JSON.parse((await page.evaluate(() => document.body.dataset.faces)) ?? '[]') as Array<FaceBox & { label: string; probs: number[] }>;
    expect(found, pageLog.join('\n')).toHaveLength(1);
    const [face] = found;
    const { face: truth } = faceScene();
    const ref = sceneRef!;
    // The same box as the zoo detector in Node, around the pasted face (top right, not the centre).
    for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(face![k] - ref.box[k]), k).toBeLessThan(0.5);
    expect(face!.x + face!.width / 2).toBeGreaterThan(truth.x);
    expect(face!.x + face!.width / 2).toBeLessThan(truth.x + truth.size);
    expect(face!.y + face!.height / 2).toBeLessThan(truth.y + truth.size);
    const probDiff = maxAbsDiff(face!.probs, ref.probs);
    console.log(`[dfd web] face crop probabilities, WASM vs Node CPU: max |diff| = ${probDiff.toExponential(2)}; box ${[face!.x, face!.y, face!.width, face!.height].map((v) => v.toFixed(1)).join(' ')}`);
    expect(probDiff).toBeLessThan(1e-2);
    const top = ref.probs.indexOf(Math.max(...ref.probs));
    expect(await page.textContent('#label')).toBe(EXPRESSIONS[top]);
    expect(face!.label).toBe(`${EXPRESSIONS[top]} ${(face!.probs[top]! * 100).toFixed(0)}%`);
    expect(await page.textContent('#face-note')).toMatch(/^1 face found/);
    // The box is drawn: its left edge (mid-height) is the box colour, the face's centre and the background are not.
    const px = (x: number, y: number) => page.evaluate(([x, y]) => Array.from((document.getElementById('faces') as HTMLCanvasElement).getContext('2d')!.getImageData(x!, y!, 1, 1).data.slice(0, 3)), [x, y]);
    const cy = Math.round(face!.y + face!.height / 2);
    expect(await px(Math.round(face!.x), cy)).toEqual([0, 255, 0]);
    expect(await px(Math.round(face!.x + face!.width), cy)).toEqual([0, 255, 0]);
    expect(await px(Math.round(face!.x + face!.width / 2), cy)).not.toEqual([0, 255, 0]);
    const scene = faceScene().image;
    expect(await px(5, 300)).toEqual(Array.from(scene.data.subarray((300 * scene.width + 5) * 3, (300 * scene.width + 5) * 3 + 3)));
    await page.screenshot({ path: join(artifacts, 'predict-faces.png'), fullPage: true });

    // A photo without a face: the page says so and predicts on the centre crop, as without detection.
    const tensors = await page.evaluate(() => document.body.dataset.tensors);
    await page.setInputFiles('#file', facePng);
    await waitFor(page, () => document.body.dataset.predictions === '2');
    expect(await page.evaluate(() => document.body.dataset.faces)).toBe('[]');
    expect(await page.textContent('#face-note')).toMatch(/no face found: predicted on the centre crop/);
    const probs = JSON.parse((await page.getAttribute('#bars', 'data-probs')) ?? 'null') as number[];
    expect(maxAbsDiff(probs, cpuProbs)).toBeLessThan(1e-3);
    expect(await page.evaluate(() => document.body.dataset.tensors)).toBe(tensors);
    await page.close();
  });

  it.skipIf(facesMissing !== undefined)('detects the face in a webcam picture too', async () => {
    const page = await open('index.html?backend=wasm', undefined, facesServer!.url);
    await waitForState(page);
    await page.click('#webcam');
    await waitFor(page, () => !(document.getElementById('snap') as HTMLButtonElement).disabled);
    await page.click('#snap');
    await waitFor(page, () => document.body.dataset.predictions === '1');
    const [w, h] = await page.evaluate(() => [(document.getElementById('faces') as HTMLCanvasElement).width, (document.getElementById('faces') as HTMLCanvasElement).height]);
    const found = JSON.parse((await page.evaluate(() => document.body.dataset.faces)) ?? '[]') as FaceBox[];
    console.log(`[dfd web] webcam frame ${w}x${h}: ${found.length} face(s), first box ${found[0] ? [found[0].x, found[0].y, found[0].width, found[0].height].map((v) => v.toFixed(1)).join(' ') : '-'}`);
    expect(found, pageLog.join('\n')).toHaveLength(1);
    // The fake camera films the upload's scene (through YUV 4:2:0): the same face, scaled to the frame.
    const s = w! / 480;
    const ref = sceneRef!.box;
    for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(found[0]![k] / s - ref[k]), k).toBeLessThan(2);
    expect(await page.textContent('#label')).not.toBe('–');
    await page.screenshot({ path: join(artifacts, 'predict-faces-webcam.png'), fullPage: true });
    await page.close();
  });

  it('falls back to WebGL without WebGPU, and runs WASM when asked, with the same probabilities', async () => {
    const cases = [
      // A browser without WebGPU: the automatic order must land on WebGL and say why.
      { url: 'index.html', init: () => void delete (Navigator.prototype as { gpu?: unknown }).gpu, backend: 'webgl' },
      { url: 'index.html?backend=wasm', init: undefined, backend: 'wasm' },
    ];
    for (const c of cases) {
      const page = await open(c.url, c.init);
      await waitForState(page);
      expect(await page.textContent('#backend')).toBe(c.backend);
      if (c.backend === 'webgl') expect(await page.textContent('#backend-notes')).toMatch(/webgpu skipped: navigator\.gpu is missing/);
      await page.setInputFiles('#file', facePng);
      await waitFor(page, () => document.body.dataset.predictions === '1');
      const probs = JSON.parse((await page.getAttribute('#bars', 'data-probs')) ?? 'null') as number[];
      const diff = maxAbsDiff(probs, cpuProbs);
      console.log(`[dfd web] ${c.backend} vs Node CPU probabilities: max |diff| = ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-3);
      await page.close();
    }
  });

  for (const backend of ['webgpu', 'wasm'] as const) {
    it(`trains on ${backend === 'webgpu' ? 'WebGPU' : 'WASM (with dfd\'s training kernels)'} with the same first losses as Node on the CPU backend`, async () => {
      const opts = { ...TRAIN_DEMO_DEFAULTS, steps: TRAIN_STEPS, size: TRAIN_SIZE };
      const cpuLosses: number[] = [];
      await runTrainingDemo(opts, (bus) => bus.subscribe('batchEnd', (e) => void cpuLosses.push(e.loss.total)));
      expect(cpuLosses).toHaveLength(TRAIN_STEPS);

      const page = await open(`train.html?autostart=1&steps=${TRAIN_STEPS}&size=${TRAIN_SIZE}${backend === 'wasm' ? '&backend=wasm' : ''}`);
      await waitForState(page);
      expect(await page.textContent('#backend')).toBe(backend);
      await waitFor(page, () => document.body.dataset.training === 'done', 120_000);
      const losses = JSON.parse((await page.getAttribute('#loss-rows', 'data-losses')) ?? '[]') as number[];
      expect(losses, pageLog.join('\n')).toHaveLength(TRAIN_STEPS);
      const diff = maxAbsDiff(losses, cpuLosses);
      console.log(`[dfd web] training losses ${backend} ${losses.map((l) => l.toFixed(5)).join(' ')} vs CPU ${cpuLosses.map((l) => l.toFixed(5)).join(' ')}: max |diff| = ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-3);
      // The plot is drawn from bus events: one row per batchEnd event.
      expect(await page.locator('#loss-rows tr').count()).toBe(TRAIN_STEPS);
      await page.screenshot({ path: join(artifacts, `train-${backend}.png`), fullPage: true });
      await page.close();
    });
  }
});
