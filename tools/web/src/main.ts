import * as tf from '@tensorflow/tfjs-core';
import { EXPRESSIONS } from '@dfd/core';
import { DfdNet, loadModelFromUrl, parseManifest, type WebManifest } from '@dfd/model';
import { backendOrderFromUrl, chooseBackend } from './backend.js';
import { centreCropBox, prepareInput, softmax, type RgbaImage } from './preprocess.js';

// The predict page: model + manifest come from `?model=<base URL>` (default: next to the page,
// where `dfd export --app` puts them).

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const modelBase = new URL(params.get('model') ?? './', location.href);

type Predictor = (input: Float32Array) => Promise<Float32Array>;

let manifest: WebManifest | undefined;
let predict: Predictor | undefined;
let lastImage: RgbaImage | undefined;
let predictions = 0;

function showError(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  $('error').textContent = message;
  document.body.dataset.state = 'error';
  console.error(err);
}

async function fetchManifest(base: URL): Promise<WebManifest> {
  const url = new URL('manifest.json', base);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load ${url.href}: HTTP ${res.status}. Serve a folder written by 'dfd export --model DIR --out WEB_DIR', or pass ?model=<its URL>`);
  return parseManifest(await res.json(), url.href);
}

async function init(): Promise<void> {
  const choice = await chooseBackend(backendOrderFromUrl(location.search));
  $('backend').textContent = choice.backend;
  document.body.dataset.backend = choice.backend;
  $('backend-notes').textContent = choice.skipped.map((s) => `${s.backend} skipped: ${s.reason}`).join(' · ');

  manifest = await fetchManifest(modelBase);
  const modelUrl = new URL(manifest.model, modelBase).href;
  const model = await loadModelFromUrl(modelUrl);
  if (!(model instanceof DfdNet)) {
    model.dispose();
    throw new Error(`${modelUrl} is not an expression classifier (DFD-Net); export one with 'dfd export'`);
  }
  const size = manifest.inputSize;
  if (model.config.inputSize !== size || model.config.numClasses !== manifest.labels.length) {
    throw new Error(
      `manifest.json says ${size}px input and ${manifest.labels.length} labels, but ${modelUrl} is ${model.config.inputSize}px with ${model.config.numClasses} classes; re-run 'dfd export'`,
    );
  }
  $('model-info').textContent = `${manifest.description ?? 'DFD-Net'}, ${size}×${size} input, ${manifest.labels.length} classes`;
  predict = async (input) => {
    const logits = tf.tidy(() => {
      const x = tf.tensor4d(input, [1, size, size, 3]);
      return model.forward(x, { training: false }).logits;
    });
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    return data;
  };
  // WebGPU and WebGL compile their kernels on first use: pay that once now, not on the first photo.
  const t0 = performance.now();
  $('model-info').textContent += ' · compiling kernels…';
  await predict(new Float32Array(size * size * 3));
  $('model-info').textContent = `${manifest.description ?? 'DFD-Net'}, ${size}×${size} input, ${manifest.labels.length} classes (ready in ${Math.round(performance.now() - t0)} ms)`;
  renderBars(null);
  document.body.dataset.state = 'ready';
}

function renderBars(probs: number[] | null): void {
  const labels = manifest?.labels ?? [...EXPRESSIONS];
  const top = probs ? probs.indexOf(Math.max(...probs)) : -1;
  const bars = $('bars');
  bars.replaceChildren(
    ...labels.map((label, i) => {
      const p = probs?.[i] ?? 0;
      const row = document.createElement('div');
      row.className = i === top ? 'bar top' : 'bar';
      row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
      row.querySelector<HTMLElement>('.name')!.textContent = label;
      row.querySelector<HTMLElement>('.fill')!.style.width = `${(p * 100).toFixed(2)}%`;
      row.querySelector<HTMLElement>('.value')!.textContent = probs ? p.toFixed(4) : '–';
      return row;
    }),
  );
  $('label').textContent = probs ? labels[top]! : '–';
  if (probs) bars.dataset.probs = JSON.stringify(probs);
}

async function runOnImage(img: RgbaImage): Promise<void> {
  if (!predict || !manifest) throw new Error('the model is not loaded yet');
  lastImage = img;
  const fraction = Number(($('crop') as HTMLInputElement).value);
  const box = centreCropBox(img.width, img.height, fraction);
  const size = manifest.inputSize;
  const input = prepareInput(img, box, size, manifest.mean, manifest.std);
  drawPreview(img, box);
  const t0 = performance.now();
  const logits = await predict(input);
  const ms = performance.now() - t0;
  renderBars(softmax(logits));
  $('timing').textContent = `forward pass: ${ms.toFixed(1)} ms on ${tf.getBackend()}`;
  // Exposed for the browser test: the tensor count must not grow from one photo to the next.
  document.body.dataset.tensors = String(tf.memory().numTensors);
  document.body.dataset.predictions = String(++predictions);
}

function drawPreview(img: RgbaImage, box: { x: number; y: number; size: number }): void {
  const src = document.createElement('canvas');
  src.width = img.width;
  src.height = img.height;
  src.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  const canvas = $('preview') as HTMLCanvasElement;
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(src, box.x, box.y, box.size, box.size, 0, 0, canvas.width, canvas.height);
}

/** Pixels exactly as stored in the file: no colour management, no premultiplied alpha. */
async function decode(source: Blob | HTMLVideoElement): Promise<RgbaImage> {
  const bitmap = source instanceof Blob
    ? await createImageBitmap(source, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' })
    : await createImageBitmap(source);
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return { data: data.data, width: data.width, height: data.height };
}

function onFile(file: File | undefined): void {
  if (!file) return;
  decode(file).then(runOnImage).catch(showError);
}

function wireInputs(): void {
  const fileInput = $('file') as HTMLInputElement;
  fileInput.addEventListener('change', () => onFile(fileInput.files?.[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    onFile(e.dataTransfer?.files[0]);
  });
  const crop = $('crop') as HTMLInputElement;
  crop.addEventListener('input', () => {
    $('crop-value').textContent = `${Math.round(Number(crop.value) * 100)}%`;
    if (lastImage) runOnImage(lastImage).catch(showError);
  });
  const video = $('video') as HTMLVideoElement;
  const snap = $('snap') as HTMLButtonElement;
  $('webcam').addEventListener('click', async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user' } });
      video.hidden = false;
      await video.play();
      snap.disabled = false;
    } catch (err) {
      showError(new Error(`webcam unavailable: ${err instanceof Error ? err.message : String(err)}`));
    }
  });
  snap.addEventListener('click', () => {
    decode(video).then(runOnImage).catch(showError);
  });
}

wireInputs();
init().catch(showError);
