import * as tf from '@tensorflow/tfjs-core';
import { EXPRESSIONS } from '@dfd/core';
import { DfdNet, loadModelFromUrl, parseManifest, type WebManifest } from '@dfd/model';
import { backendOrderFromUrl, chooseBackend } from './backend.js';
import { FaceLandmarker, TinyFaceDetector, cropFace, eyeCentres, loadZooWeightsFromUrl, type FaceBox, type ZooImage } from '@dfd/zoo';
import { faceLabel, faceSettingsFromUrl, orderFaces, prepareFaceInput, rgbaToRgb, type FaceSettings } from './faces.js';
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
/** Face detection, when the manifest names a detector (`dfd export` with @vladmandic/face-api installed). */
let faces: { detector: TinyFaceDetector; landmarker?: FaceLandmarker; settings: FaceSettings } | undefined;

interface FaceResult {
  box: FaceBox;
  crop: ZooImage;
  probs: number[];
  label: string;
}

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
  const faceNote = await loadFaces(manifest);
  $('model-info').textContent = `${manifest.description ?? 'DFD-Net'}, ${size}×${size} input, ${manifest.labels.length} classes (ready in ${Math.round(performance.now() - t0)} ms) · ${faceNote}`;
  document.body.dataset.detection = faces ? 'on' : 'off';
  renderBars(null);
  document.body.dataset.state = 'ready';
}

/** Loads the manifest's face detector (and landmark net) from the model folder; says what the page does with faces. */
async function loadFaces(m: WebManifest): Promise<string> {
  const settings = faceSettingsFromUrl(location.search);
  if (!m.faceDetector) return 'face detection: off (no detector in this model folder; re-run dfd export with @vladmandic/face-api installed)';
  if (!settings.enabled) return 'face detection: off (?detect=0)';
  const detector = new TinyFaceDetector(await loadZooWeightsFromUrl(new URL(m.faceDetector, modelBase)));
  const landmarker = m.faceLandmarks ? new FaceLandmarker(await loadZooWeightsFromUrl(new URL(m.faceLandmarks, modelBase))) : undefined;
  // Compile the detector's (and landmark net's) kernels now, not on the first photo.
  const blank = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
  await detector.detect(blank, { inputSize: settings.inputSize, scoreThreshold: settings.scoreThreshold });
  if (landmarker) await landmarker.landmarks(blank, { x: 8, y: 8, width: 48, height: 48 });
  faces = { detector, ...(landmarker ? { landmarker } : {}), settings };
  return `face detection: on (${settings.inputSize} px detector${landmarker ? ', eyes levelled' : ''})`;
}

/** Detects, crops (margin, eyes levelled) and predicts each face, largest first; [] when none is found. */
async function predictFaces(img: RgbaImage): Promise<FaceResult[]> {
  const { detector, landmarker, settings } = faces!;
  const rgb = rgbaToRgb(img);
  const boxes = orderFaces(await detector.detect(rgb, { inputSize: settings.inputSize, scoreThreshold: settings.scoreThreshold }), settings.maxFaces);
  const out: FaceResult[] = [];
  for (const box of boxes) {
    const eyes = landmarker ? eyeCentres(await landmarker.landmarks(rgb, box)) : undefined;
    const crop = cropFace(rgb, box, { margin: settings.margin, ...(eyes ? { eyes } : {}) });
    const probs = softmax(await predict!(prepareFaceInput(crop, manifest!.inputSize, manifest!.mean, manifest!.std)));
    out.push({ box, crop, probs, label: faceLabel(manifest!.labels, probs) });
  }
  return out;
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
  if (faces) {
    const t0 = performance.now();
    const found = await predictFaces(img);
    drawFaces(img, found);
    if (found.length > 0) {
      const ms = performance.now() - t0;
      renderBars(found[0]!.probs);
      drawCrop(found[0]!.crop);
      $('face-note').textContent = `${found.length} face${found.length > 1 ? 's' : ''} found; the bars and the network input show the largest`;
      $('timing').textContent = `detection + ${found.length} forward pass${found.length > 1 ? 'es' : ''}: ${ms.toFixed(1)} ms on ${tf.getBackend()}`;
      finishPrediction();
      return;
    }
    $('face-note').textContent = 'no face found: predicted on the centre crop instead (adjust it with the face crop slider)';
  }
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
  finishPrediction();
}

function finishPrediction(): void {
  // Exposed for the browser test: the tensor count must not grow from one photo to the next.
  document.body.dataset.tensors = String(tf.memory().numTensors);
  document.body.dataset.predictions = String(++predictions);
}

/** The photo with a box and the predicted label over each face (the test reads `data-faces`). */
function drawFaces(img: RgbaImage, found: FaceResult[]): void {
  $('faces-section').hidden = false;
  const canvas = $('faces') as HTMLCanvasElement;
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d')!;
  ctx.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  const line = 4;
  const fontPx = Math.max(12, Math.round(Math.min(img.width, img.height) / 24));
  ctx.font = `${fontPx}px sans-serif`;
  ctx.textBaseline = 'top';
  for (const f of found) {
    const x = Math.round(f.box.x);
    const y = Math.round(f.box.y);
    ctx.strokeStyle = FACE_BOX_COLOUR;
    ctx.lineWidth = line;
    ctx.strokeRect(x, y, Math.round(f.box.width), Math.round(f.box.height));
    // The label sits above the box, or inside its top edge when the box touches the top.
    const tw = ctx.measureText(f.label).width + 8;
    const ty = y - fontPx - 6 - line / 2 >= 0 ? y - fontPx - 6 - line / 2 : y + line / 2;
    ctx.fillStyle = FACE_BOX_COLOUR;
    ctx.fillRect(x - line / 2, ty, tw, fontPx + 6);
    ctx.fillStyle = '#000';
    ctx.fillText(f.label, x - line / 2 + 4, ty + 3);
  }
  document.body.dataset.faces = JSON.stringify(found.map((f) => ({ ...f.box, label: f.label, probs: f.probs })));
}

const FACE_BOX_COLOUR = '#00ff00';

/** The face crop (RGB) the network saw, scaled into the preview. */
function drawCrop(crop: ZooImage): void {
  const rgba = new Uint8ClampedArray(crop.width * crop.height * 4);
  for (let i = 0; i < crop.width * crop.height; i++) {
    rgba.set(crop.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  drawPreview({ data: rgba, width: crop.width, height: crop.height }, { x: 0, y: 0, size: crop.width });
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
