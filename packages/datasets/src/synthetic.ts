import { Rng } from '@dfd/core';
import { DatasetSpecError } from './errors.js';
import { intOption } from './spec.js';
import type { Dataset, DatasetPlugin, FactorSpec, RgbImage, Sample, SpecOptions } from './types.js';

/** How a synthetic domain draws its expression-irrelevant factors and renders them. */
export interface SyntheticDomain {
  readonly name: string;
  readonly description: string;
  /** Expression prior over the 7 canonical classes. */
  readonly expression: readonly number[];
  readonly skin: readonly number[];
  readonly age: readonly number[];
  /** Prior over the 5 pose bins (yaw far left .. far right). */
  readonly pose: readonly number[];
  /** Prior over the 3 illumination bins (light from left, front, right). */
  readonly illumination: readonly number[];
  /** Overall brightness range. */
  readonly brightness: readonly [number, number];
  /** Strength of the directional light gradient. */
  readonly lightGradient: number;
  /** Roll std in degrees. */
  readonly roll: number;
  /** Translation / scale jitter (fractions of the image). */
  readonly jitter: number;
  readonly background: 'plain' | 'clutter' | 'paper' | 'dark';
  readonly style: 'filled' | 'outline';
  /** Probability of a 3x3 blur. */
  readonly blur: number;
  /** Pixel noise std (0..1 scale). */
  readonly noise: number;
  /** Render in grey (sketches). */
  readonly grey: boolean;
}

const UNIFORM7 = [1, 1, 1, 1, 1, 1, 1];

/** The built-in domains: the same faces and expressions under different factor distributions. */
export const SYNTHETIC_DOMAINS: Readonly<Record<string, SyntheticDomain>> = {
  studio: {
    name: 'studio',
    description: 'lab-style: frontal, even light, plain background, clean filled rendering',
    expression: UNIFORM7,
    skin: [0.5, 0.3, 0.2],
    age: [0.4, 0.45, 0.15],
    pose: [0.03, 0.12, 0.7, 0.12, 0.03],
    illumination: [0.15, 0.7, 0.15],
    brightness: [0.95, 1.05],
    lightGradient: 0.15,
    roll: 2,
    jitter: 0.02,
    background: 'plain',
    style: 'filled',
    blur: 0,
    noise: 0.01,
    grey: false,
  },
  wild: {
    name: 'wild',
    description: 'in-the-wild: any pose and roll, varied light, cluttered background, blur and noise',
    expression: [0.12, 0.08, 0.08, 0.26, 0.14, 0.12, 0.2],
    skin: [0.34, 0.33, 0.33],
    age: [0.33, 0.34, 0.33],
    pose: [0.2, 0.2, 0.2, 0.2, 0.2],
    illumination: [0.34, 0.32, 0.34],
    brightness: [0.7, 1.2],
    lightGradient: 0.35,
    roll: 10,
    jitter: 0.07,
    background: 'clutter',
    style: 'filled',
    blur: 0.3,
    noise: 0.04,
    grey: false,
  },
  sketch: {
    name: 'sketch',
    description: 'grey line drawings on paper, light shading, mostly frontal',
    expression: UNIFORM7,
    skin: [0.34, 0.33, 0.33],
    age: [0.3, 0.4, 0.3],
    pose: [0.1, 0.2, 0.4, 0.2, 0.1],
    illumination: [0.3, 0.4, 0.3],
    brightness: [0.95, 1.05],
    lightGradient: 0.1,
    roll: 5,
    jitter: 0.04,
    background: 'paper',
    style: 'outline',
    blur: 0.2,
    noise: 0.02,
    grey: true,
  },
  lowlight: {
    name: 'lowlight',
    description: 'dark scenes with strong side light, heavy sensor noise and blur',
    expression: UNIFORM7,
    skin: [0.2, 0.3, 0.5],
    age: [0.2, 0.4, 0.4],
    pose: [0.15, 0.2, 0.3, 0.2, 0.15],
    illumination: [0.45, 0.1, 0.45],
    brightness: [0.25, 0.5],
    lightGradient: 0.6,
    roll: 6,
    jitter: 0.05,
    background: 'dark',
    style: 'filled',
    blur: 0.5,
    noise: 0.08,
    grey: false,
  },
};

/** Default number of synthetic identities. */
export const SYNTHETIC_IDENTITIES = 16;

/** The factors synthetic samples carry (identity classes follow the `ids` option). */
export function syntheticFactors(ids = SYNTHETIC_IDENTITIES): FactorSpec[] {
  return [
    { name: 'identity', classes: ids },
    { name: 'skin', classes: 3, classNames: ['light', 'medium', 'dark'] },
    { name: 'age', classes: 3, classNames: ['young', 'adult', 'old'] },
    { name: 'pose', classes: 5, classNames: ['far-left', 'left', 'frontal', 'right', 'far-right'] },
    { name: 'illumination', classes: 3, classNames: ['left', 'front', 'right'] },
  ];
}

/** Everything that determines one synthetic face. */
export interface FaceParams {
  expression: number;
  /** Expression strength, ~0.55..1.15. */
  intensity: number;
  identity: number;
  skin: number;
  age: number;
  pose: number;
  illumination: number;
  /** Per-render seed for noise and clutter. */
  seed: number;
}

interface Identity {
  faceW: number;
  faceH: number;
  eyeSpacing: number;
  eyeSize: number;
  mouthWidth: number;
  noseLength: number;
  browThickness: number;
  hair: number;
}

const identityCache = new Map<number, Identity[]>();

// Identities are the same "people" in every domain and for every seed.
function identityTable(n: number): Identity[] {
  const hit = identityCache.get(n);
  if (hit) return hit;
  const table = makeIdentities(n);
  identityCache.set(n, table);
  return table;
}

function makeIdentities(n: number): Identity[] {
  const rng = new Rng('dfd-synthetic-identities');
  return Array.from({ length: n }, () => ({
    faceW: rng.uniform(0.5, 0.66),
    faceH: rng.uniform(0.68, 0.82),
    eyeSpacing: rng.uniform(0.18, 0.27),
    eyeSize: rng.uniform(0.8, 1.2),
    mouthWidth: rng.uniform(0.8, 1.2),
    noseLength: rng.uniform(0.18, 0.3),
    browThickness: rng.uniform(0.025, 0.045),
    hair: rng.int(3),
  }));
}

// Expression geometry, as deltas from neutral (scaled by intensity):
// [brow height, inner-brow offset, eye openness, mouth curvature, mouth open, mouth width, asymmetry]
const EXPRESSION_SHAPES: readonly (readonly number[])[] = [
  /* surprise  */ [-0.14, 0.0, 0.45, 0.0, 0.16, -0.35, 0],
  /* fear      */ [-0.08, -0.08, 0.35, -0.05, 0.08, 0.15, 0],
  /* disgust   */ [0.05, 0.04, -0.25, -0.06, 0.02, -0.05, 0.07],
  /* happiness */ [-0.02, 0.0, -0.2, 0.13, 0.04, 0.2, 0],
  /* sadness   */ [0.0, -0.1, -0.15, -0.11, 0.0, -0.05, 0],
  /* anger     */ [0.05, 0.1, -0.28, -0.03, 0.0, -0.2, 0],
  /* neutral   */ [0, 0, 0, 0, 0, 0, 0],
];

const SKIN: readonly (readonly [number, number, number])[] = [
  [0.95, 0.8, 0.7],
  [0.8, 0.58, 0.42],
  [0.45, 0.3, 0.22],
];
const HAIR: readonly (readonly [number, number, number])[] = [
  [0.12, 0.09, 0.07],
  [0.42, 0.26, 0.13],
  [0.8, 0.66, 0.36],
];
const YAW = [-1, -0.5, 0, 0.5, 1];

function pick(rng: Rng, weights: readonly number[]): number {
  let total = 0;
  for (const w of weights) total += w;
  let u = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/** Draws the parameters of one face of `domain` (deterministic in `rng`). */
export function sampleFaceParams(domain: SyntheticDomain, rng: Rng, ids = SYNTHETIC_IDENTITIES): FaceParams {
  return {
    expression: pick(rng, domain.expression),
    intensity: rng.uniform(0.55, 1.15),
    identity: rng.int(ids),
    skin: pick(rng, domain.skin),
    age: pick(rng, domain.age),
    pose: pick(rng, domain.pose),
    illumination: pick(rng, domain.illumination),
    seed: rng.nextUint32(),
  };
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

function ellipseDist(u: number, v: number, cx: number, cy: number, rx: number, ry: number): number {
  const dx = (u - cx) / rx;
  const dy = (v - cy) / ry;
  return (Math.sqrt(dx * dx + dy * dy) - 1) * Math.min(rx, ry);
}

function segmentDist(u: number, v: number, ax: number, ay: number, bx: number, by: number): number {
  const px = u - ax;
  const py = v - ay;
  const dx = bx - ax;
  const dy = by - ay;
  const t = clamp01((px * dx + py * dy) / (dx * dx + dy * dy));
  const ex = px - t * dx;
  const ey = py - t * dy;
  return Math.sqrt(ex * ex + ey * ey);
}

/** Renders one face as `size x size` RGB; deterministic in `params`. */
export function renderFace(domain: SyntheticDomain, params: FaceParams, size: number, ids = SYNTHETIC_IDENTITIES): RgbImage {
  const rng = new Rng(params.seed);
  const id = identityTable(ids)[params.identity]!;
  const shape = EXPRESSION_SHAPES[params.expression]!.map((d) => d * params.intensity + rng.normal(0, 0.012));
  const [browH, browInner, eyeOpen, curve, open, mouthW, asym] = shape as [number, number, number, number, number, number, number];
  const yaw = YAW[params.pose]! * 0.8 + rng.normal(0, 0.08);
  const roll = (rng.normal(0, domain.roll) * Math.PI) / 180;
  const scale = 1 + rng.normal(0, domain.jitter);
  const tx = rng.normal(0, domain.jitter);
  const ty = rng.normal(0, domain.jitter);
  const brightness = rng.uniform(domain.brightness[0], domain.brightness[1]);
  const lightDir = params.illumination - 1 + rng.normal(0, 0.1);
  const skinBase = SKIN[params.skin]!;
  const skin = skinBase.map((c) => clamp01(c + rng.normal(0, 0.03)));
  const hair = params.age === 2 ? [0.75, 0.75, 0.74] : params.age === 1 ? HAIR[id.hair]!.map((c) => c * 0.6 + 0.25) : HAIR[id.hair]!;
  const feature = [0.16, 0.09, 0.08];
  const lips = [0.55 * skin[0]!, 0.25 * skin[1]!, 0.25 * skin[2]!];
  // Background.
  let bg: number[];
  const clutter: Array<{ x: number; y: number; r: number; c: number[] }> = [];
  if (domain.background === 'plain') bg = [0.75 + rng.uniform(-0.05, 0.05), 0.8, 0.88 + rng.uniform(-0.05, 0.05)];
  else if (domain.background === 'paper') bg = [0.96, 0.95, 0.92];
  else if (domain.background === 'dark') bg = [rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.25)];
  else {
    bg = [rng.next(), rng.next(), rng.next()];
    const n = 3 + rng.int(5);
    for (let i = 0; i < n; i++) clutter.push({ x: rng.uniform(-1.2, 1.2), y: rng.uniform(-1.2, 1.2), r: rng.uniform(0.15, 0.6), c: [rng.next(), rng.next(), rng.next()] });
  }
  const outline = domain.style === 'outline';
  const wrinkles = params.age === 2 ? 3 : params.age === 1 ? 1 : 0;
  const cos = Math.cos(roll);
  const sin = Math.sin(roll);
  const px = 2 / size / scale; // one pixel in face units
  const cover = (d: number) => clamp01(0.5 - d / px);
  const line = 0.03 + px * 0.5;
  const shift = yaw * 0.22;
  const faceW = id.faceW * (1 - 0.12 * Math.abs(yaw));
  const eyeR = 0.085 * id.eyeSize;
  const eyeH = eyeR * clamp01(0.55 + eyeOpen) + 0.008;
  const mw = 0.26 * id.mouthWidth * (1 + mouthW);
  const my = 0.42;
  const out = new Uint8Array(size * size * 3);
  const col = new Float64Array(3);
  const blend = (c: ArrayLike<number>, a: number) => {
    if (a <= 0) return;
    col[0]! += (c[0]! - col[0]!) * a;
    col[1]! += (c[1]! - col[1]!) * a;
    col[2]! += (c[2]! - col[2]!) * a;
  };
  const ink = Float64Array.from(outline ? [0.15, 0.15, 0.15] : feature);
  const shade = Float64Array.from(outline ? [1 - 0.12 * (params.skin + 1), 1 - 0.13 * (params.skin + 1), 1 - 0.14 * (params.skin + 1)] : skin);
  const skinC = Float64Array.from(skin);
  const hairC = Float64Array.from(hair);
  const lipsC = Float64Array.from(lips);
  const mouthC = Float64Array.from(outline ? ink : [0.22, 0.05, 0.06]);
  const white = Float64Array.from([0.96, 0.96, 0.94]);
  // Per-side feature geometry, fixed for the whole image.
  const sides = [-1, 1].map((side) => {
    const ex = shift + side * id.eyeSpacing * (1 - 0.25 * side * yaw);
    const r = eyeR * (1 - 0.25 * side * yaw);
    return { side, ex, r, ix: shift + side * 0.07, ox: ex + side * r * 1.3 };
  });
  const ey = -0.12;
  const by = -0.3 + browH;
  const mx = shift * 0.9;
  const openH = Math.max(0, open);
  for (let yy = 0; yy < size; yy++) {
    const y = ((yy + 0.5) / size) * 2 - 1;
    for (let xx = 0; xx < size; xx++) {
      const x = ((xx + 0.5) / size) * 2 - 1;
      col[0] = bg[0]!;
      col[1] = bg[1]!;
      col[2] = bg[2]!;
      for (let k = 0; k < clutter.length; k++) {
        const b = clutter[k]!;
        const dx = x - b.x;
        const dy = y - b.y;
        blend(b.c, cover(Math.sqrt(dx * dx + dy * dy) - b.r) * 0.9);
      }
      // Face coordinates: undo translation, roll and scale.
      const qx = x - tx;
      const qy = y - ty;
      const u = (cos * qx + sin * qy) / scale;
      const v = (-sin * qx + cos * qy) / scale;
      const dFace = ellipseDist(u, v, shift * 0.3, 0.05, faceW, id.faceH);
      if (dFace > 0.25) {
        // Far outside the face: only hair can still reach here.
        const dHair = ellipseDist(u, v, shift * 0.15, -0.02, faceW * 1.12, id.faceH * 1.08);
        if (dHair < px) {
          if (outline) blend(ink, cover(Math.abs(dHair) - line * 0.5) * 0.8);
          else blend(hairC, cover(dHair));
        }
      } else {
        const dHair = ellipseDist(u, v, shift * 0.15, -0.02, faceW * 1.12, id.faceH * 1.08);
        const inHairZone = v < -0.42 + 0.08 * Math.abs(u) || dFace > 0;
        if (outline) {
          if (inHairZone) blend(ink, cover(Math.abs(dHair) - line * 0.5) * 0.8);
          blend(shade, cover(dFace) * 0.5);
          blend(ink, cover(Math.abs(dFace) - line * 0.5));
        } else {
          if (inHairZone) blend(hairC, cover(dHair));
          blend(skinC, cover(Math.max(dFace, -(v + 0.42 - 0.08 * Math.abs(u)))));
        }
        if (dFace < px) {
          // Wrinkles: forehead lines.
          for (let w = 0; w < wrinkles; w++) {
            const wy = -0.33 + w * 0.05;
            blend(ink, 0.5 * cover(segmentDist(u, v, shift - 0.2, wy, shift + 0.2, wy) - px * 0.35));
          }
          for (let k = 0; k < 2; k++) {
            const { side, ex, r, ix, ox } = sides[k]!;
            // Eye: white, iris, lid outline.
            const dEye = ellipseDist(u, v, ex, ey, r, eyeH);
            if (dEye < 0.05) {
              if (!outline) blend(white, cover(dEye));
              const ix2 = u - ex - yaw * 0.03;
              const iy2 = v - ey;
              blend(ink, cover(Math.min(Math.abs(dEye) - px * 0.4, Math.sqrt(ix2 * ix2 + iy2 * iy2) - Math.min(eyeH, r * 0.55))));
            }
            if (params.age === 2) blend(ink, 0.4 * cover(segmentDist(u, v, ex + side * r * 1.1, ey, ex + side * r * 1.5, ey + 0.05) - px * 0.3));
            // Brow: inner end moves with browInner (anger V / sadness and fear slant).
            blend(ink, cover(segmentDist(u, v, ix, by + browInner, ox, by + 0.02) - id.browThickness));
          }
          // Nose.
          blend(ink, 0.6 * cover(segmentDist(u, v, shift * 1.1, -0.06, shift * 1.25, -0.06 + id.noseLength) - px * 0.4));
          if (params.expression === 2) {
            blend(ink, 0.5 * cover(segmentDist(u, v, shift - 0.05, 0.02, shift - 0.1, 0.1) - px * 0.3));
            blend(ink, 0.5 * cover(segmentDist(u, v, shift + 0.05, 0.02, shift + 0.1, 0.1) - px * 0.3));
          }
          // Mouth: a curved lip line, corners up for smiles and down for frowns, opening as a dark ellipse.
          const t = (u - mx) / mw;
          if (Math.abs(t) <= 1.15) {
            const tc = t < -1 ? -1 : t > 1 ? 1 : t;
            const yc = my - curve * tc * tc - asym * tc;
            const slope = (-2 * curve * tc - asym) / mw;
            const dLine = Math.abs(v - yc) / Math.sqrt(1 + slope * slope) + (Math.abs(t) > 1 ? (Math.abs(t) - 1) * mw : 0);
            const halfOpen = openH * Math.sqrt(Math.max(0, 1 - tc * tc));
            const dOpen = Math.abs(v - yc) - halfOpen;
            if (!outline) blend(lipsC, cover(Math.min(dLine - 0.03, dOpen - 0.02)));
            blend(mouthC, cover(Math.min(dLine - px * 0.5, Math.abs(t) < 1 ? dOpen : 1)));
          }
        }
      }
      // Light: global brightness times a left-right gradient.
      const light = brightness * (1 + domain.lightGradient * lightDir * x);
      const o = (yy * size + xx) * 3;
      let r = col[0]! * light;
      let g = col[1]! * light;
      let b = col[2]! * light;
      if (domain.grey) {
        const m = 0.299 * r + 0.587 * g + 0.114 * b;
        r = m;
        g = m;
        b = m;
      }
      out[o] = Math.round(clamp01(r) * 255);
      out[o + 1] = Math.round(clamp01(g) * 255);
      out[o + 2] = Math.round(clamp01(b) * 255);
    }
  }
  if (rng.next() < domain.blur) boxBlur3(out, size);
  if (domain.noise > 0) {
    // Sum of two uniforms (triangular, std 1/sqrt(6)): noise-like enough and ~10x cheaper than Box-Muller.
    const k = domain.noise * 255 * Math.sqrt(6);
    for (let i = 0; i < out.length; i += 3) {
      const nz = domain.grey ? (rng.next() + rng.next() - 1) * k : 0;
      for (let c = 0; c < 3; c++) {
        const val = out[i + c]! + (domain.grey ? nz : (rng.next() + rng.next() - 1) * k);
        out[i + c] = val < 0 ? 0 : val > 255 ? 255 : Math.round(val);
      }
    }
  }
  return { width: size, height: size, data: out };
}

function boxBlur3(data: Uint8Array, size: number): void {
  const src = data.slice();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        let n = 0;
        for (let dy = -1; dy <= 1; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= size) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= size) continue;
            s += src[(yy * size + xx) * 3 + c]!;
            n++;
          }
        }
        data[(y * size + x) * 3 + c] = Math.round(s / n);
      }
    }
  }
}

/** Options of {@link createSyntheticDataset}. */
export interface SyntheticOptions {
  train?: number;
  val?: number;
  test?: number;
  size?: number;
  seed?: number;
  ids?: number;
}

/**
 * A synthetic dataset of `domain`: lazily rendered faces (samples hold parameters, pixels are
 * drawn when the loader asks), with expression and factor labels.
 */
export function createSyntheticDataset(domainName: string, options: SyntheticOptions = {}): Dataset {
  const domain = SYNTHETIC_DOMAINS[domainName];
  if (!domain) {
    throw new DatasetSpecError(`unknown synthetic domain '${domainName}'; choose one of ${Object.keys(SYNTHETIC_DOMAINS).join(', ')}`);
  }
  const size = options.size ?? 48;
  const seed = options.seed ?? 0;
  const ids = options.ids ?? SYNTHETIC_IDENTITIES;
  const counts: Array<['train' | 'val' | 'test', number]> = [
    ['train', options.train ?? 1000],
    ['val', options.val ?? 0],
    ['test', options.test ?? 300],
  ];
  const splits: Dataset['splits'] = {};
  for (const [split, n] of counts) {
    if (n === 0 && split === 'val') continue;
    const samples: Sample[] = [];
    for (let i = 0; i < n; i++) {
      const p = sampleFaceParams(domain, new Rng(`synthetic:${domain.name}:${seed}:${split}:${i}`), ids);
      samples.push({
        id: `${domain.name}/${split}/${i}`,
        image: { kind: 'generated', width: size, height: size, render: () => renderFace(domain, p, size, ids) },
        expression: p.expression,
        factors: { identity: p.identity, skin: p.skin, age: p.age, pose: p.pose, illumination: p.illumination },
      });
    }
    splits[split] = samples;
  }
  const q = Object.entries(options).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join('&');
  return { name: `synthetic:${domain.name}${q ? `?${q}` : ''}`, plugin: 'synthetic', splits, hasExpression: true, factors: syntheticFactors(ids), warnings: [] };
}

/** Options read from a spec's query: train, val, test, size, seed, ids. */
export function syntheticOptionsFromSpec(options: SpecOptions): SyntheticOptions {
  const known = ['train', 'val', 'test', 'size', 'seed', 'ids'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new DatasetSpecError(`synthetic: unknown option '${k}'; known: ${known.join(', ')}`);
  }
  return {
    train: intOption(options, 'train', 1000, 0, 1_000_000),
    val: intOption(options, 'val', 0, 0, 1_000_000),
    test: intOption(options, 'test', 300, 0, 1_000_000),
    size: intOption(options, 'size', 48, 8, 1024),
    seed: intOption(options, 'seed', 0, 0, 2 ** 32 - 1),
    ids: intOption(options, 'ids', SYNTHETIC_IDENTITIES, 2, 10_000),
  };
}

/** `synthetic:<domain>?train=&val=&test=&size=&seed=&ids=`: procedurally rendered faces, nothing to download. */
export const syntheticPlugin: DatasetPlugin = {
  name: 'synthetic',
  options: ['train', 'val', 'test', 'size', 'seed', 'ids'],
  description: `procedural faces; domains ${Object.keys(SYNTHETIC_DOMAINS).join(', ')}; options train, val, test, size, seed, ids`,
  labels: { expression: true, factors: syntheticFactors() },
  async validate(location) {
    return SYNTHETIC_DOMAINS[location]
      ? []
      : [{ severity: 'error', message: `unknown synthetic domain '${location}'; choose one of ${Object.keys(SYNTHETIC_DOMAINS).join(', ')}` }];
  },
  async load(location, options) {
    return createSyntheticDataset(location, syntheticOptionsFromSpec(options));
  },
};
