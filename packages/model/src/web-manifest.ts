import { DfdError } from '@dfd/core';

/**
 * The small manifest `dfd export` writes next to model.json: what the web app needs to know
 * before it downloads the weights (labels in output order, input size, where the model is).
 */
/** The manifest `dfd export` writes beside model.json for the web app (tools/web). */
export interface WebManifest {
  format: 'dfd-web';
  formatVersion: 1;
  /** model.json path, relative to the manifest. */
  model: string;
  /** Class names in the order of the model's outputs (canonical EXPRESSIONS order). */
  labels: string[];
  /** Side of the square RGB input the network expects, in pixels. */
  inputSize: number;
  /** Per-channel normalisation applied after scaling pixels to [0, 1]: (x - mean) / std. */
  mean: [number, number, number];
  std: [number, number, number];
  /** Free-form model description (variant, width) for the page header. */
  description?: string;
  /**
   * Face detector weights manifest (tfjs weights-manifest JSON, relative to this manifest;
   * `dfd export` copies face-api's tiny face detector to `faces/`). Absent: no face detection,
   * the app centre-crops as before.
   */
  faceDetector?: string;
  /** 68-point landmark net weights manifest (relative): with it, face crops are eye-levelled. Needs `faceDetector`. */
  faceLandmarks?: string;
}

/** Checks a parsed manifest and says which field is wrong, so a bad export fails loudly. */
export function parseManifest(value: unknown, source: string): WebManifest {
  const m = value as Partial<WebManifest> | null;
  const fail = (field: string, want: string): never => {
    throw new DfdError('E_WEB_MANIFEST', `${source}: field '${field}' must be ${want}; re-run 'dfd export' to rewrite it`);
  };
  if (!m || typeof m !== 'object') fail('(root)', 'an object');
  if (m!.format !== 'dfd-web') fail('format', "'dfd-web'");
  if (m!.formatVersion !== 1) fail('formatVersion', '1');
  if (typeof m!.model !== 'string' || m!.model === '') fail('model', 'a relative path to model.json');
  if (!Array.isArray(m!.labels) || m!.labels.length === 0 || !m!.labels.every((l) => typeof l === 'string')) fail('labels', 'a non-empty string array');
  if (!Number.isInteger(m!.inputSize) || m!.inputSize! <= 0) fail('inputSize', 'a positive integer');
  const triple = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!triple(m!.mean)) fail('mean', 'three numbers');
  if (!triple(m!.std) || m!.std!.some((s) => s <= 0)) fail('std', 'three positive numbers');
  const relPath = (v: unknown) => typeof v === 'string' && v !== '' && !/^[a-z][a-z0-9+.-]*:|^\/|\.\.(\/|$)/i.test(v);
  if (m!.faceDetector !== undefined && !relPath(m!.faceDetector)) fail('faceDetector', 'a relative path (inside the exported folder) to the detector weights manifest, or absent');
  if (m!.faceLandmarks !== undefined && !relPath(m!.faceLandmarks)) fail('faceLandmarks', 'a relative path (inside the exported folder) to the landmark net weights manifest, or absent');
  if (m!.faceLandmarks !== undefined && m!.faceDetector === undefined) fail('faceLandmarks', "absent without 'faceDetector' (landmarks need detected faces)");
  return m as WebManifest;
}
