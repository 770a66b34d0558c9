import { describe, expect, it } from 'vitest';
import { ALIGN_TEMPLATE, FramingError, alignFace, applySimilarity, centreCrop, fitSimilarity, frameImage, framingFromKind, invertSimilarity, parseFraming, warpSimilarity, type FramingNets } from './framing.js';
import type { Landmarks68 } from './landmarks.js';

/** An image whose pixel (x, y) is (x, y, x + y) mod 256. */
function ramp(width: number, height: number) {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x % 256, y % 256, (x + y) % 256], (y * width + x) * 3);
  return { width, height, data };
}

/** 68 points with eyes (36-41, 42-47) and mouth (48-67) centred at the given points. */
function landmarksAt(left: [number, number], right: [number, number], mouth: [number, number]): Landmarks68 {
  const pts: Landmarks68 = Array.from({ length: 68 }, () => [0, 0] as [number, number]);
  const ring = (from: number, to: number, c: [number, number]) => {
    const n = to - from;
    for (let i = 0; i < n; i++) pts[from + i] = [c[0] + 2 * Math.cos((2 * Math.PI * i) / n), c[1] + 2 * Math.sin((2 * Math.PI * i) / n)];
  };
  ring(36, 42, left);
  ring(42, 48, right);
  ring(48, 68, mouth);
  return pts;
}

describe('framing schema', () => {
  it('fills defaults, round-trips through JSON, rejects bad fields naming them', () => {
    expect(parseFraming(undefined)).toEqual({ kind: 'resize' });
    const align = parseFraming({ kind: 'align', size: 96 });
    expect(align).toEqual({ kind: 'align', size: 96, detectSize: 416, threshold: 0.5, upscale: 160 });
    expect(parseFraming(JSON.parse(JSON.stringify(align)))).toEqual(align);
    expect(framingFromKind('centre-crop')).toEqual({ kind: 'centre-crop', scale: 1 });
    expect(() => parseFraming({ kind: 'align', size: 4 }, 'model.json framing')).toThrow(/model\.json framing\.size/);
    expect(() => parseFraming({ kind: 'squash' })).toThrow(FramingError);
    expect(() => framingFromKind('crop')).toThrow(/resize, centre-crop or align/);
  });
});

describe('similarity', () => {
  it('recovers a known similarity exactly from 3 points (closed form)', () => {
    const angle = 0.3;
    const scale = 1.7;
    const s = { a: scale * Math.cos(angle), b: scale * Math.sin(angle), tx: 5, ty: -3 };
    const from: Array<[number, number]> = [[10, 20], [40, 22], [25, 50]];
    const to = from.map((p) => applySimilarity(s, p));
    const fit = fitSimilarity(from, to);
    expect(fit.a).toBeCloseTo(s.a, 12);
    expect(fit.b).toBeCloseTo(s.b, 12);
    expect(fit.tx).toBeCloseTo(5, 10);
    expect(fit.ty).toBeCloseTo(-3, 10);
    const back = invertSimilarity(fit);
    const p = applySimilarity(back, applySimilarity(fit, [7, 9]));
    expect(p[0]).toBeCloseTo(7, 10);
    expect(p[1]).toBeCloseTo(9, 10);
  });

  it('is the least-squares fit when no similarity is exact', () => {
    // Points of a unit square onto a 2x1 rectangle: no rotation by symmetry, scale = sum(p.q)/sum(|p|^2) = 1.5.
    const from: Array<[number, number]> = [[-1, -1], [1, -1], [1, 1], [-1, 1]];
    const to: Array<[number, number]> = [[-2, -1], [2, -1], [2, 1], [-2, 1]];
    const fit = fitSimilarity(from, to);
    expect(fit.a).toBeCloseTo(1.5, 12);
    expect(fit.b).toBeCloseTo(0, 12);
    expect(fit.tx).toBeCloseTo(0, 12);
    expect(fit.ty).toBeCloseTo(0, 12);
    expect(() => fitSimilarity([[1, 1], [1, 1]], [[0, 0], [1, 1]])).toThrow(/coincide/);
  });
});

describe('warp and crops', () => {
  it('the identity warp and an integer shift copy pixels exactly', () => {
    const img = ramp(20, 16);
    expect(warpSimilarity(img, { a: 1, b: 0, tx: 0, ty: 0 }, 20, 16).data).toEqual(img.data);
    const shifted = warpSimilarity(img, { a: 1, b: 0, tx: 3, ty: 2 }, 5, 4);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) expect([...shifted.data.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3)]).toEqual([x + 3, y + 2, x + y + 5]);
  });

  it('a half-turn about the centre mirrors both axes', () => {
    const img = ramp(8, 8);
    // Output u -> source 8 - u: a = -1, tx = ty = 8.
    const out = warpSimilarity(img, { a: -1, b: 0, tx: 8, ty: 8 }, 8);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(out.data[(y * 8 + x) * 3]).toBe(7 - x);
  });

  it('centre-crop takes the centred square of the shorter side', () => {
    const img = ramp(30, 20);
    const c = centreCrop(img);
    expect([c.width, c.height]).toEqual([20, 20]);
    expect([...c.data.subarray(0, 3)]).toEqual([5, 0, 5]);
    const half = centreCrop(img, 0.5);
    expect([half.width, half.height]).toEqual([10, 10]);
    expect([...half.data.subarray(0, 3)]).toEqual([10, 5, 15]);
    expect(() => centreCrop(img, 0)).toThrow(FramingError);
  });

  it('align maps the eye and mouth centres onto the template', () => {
    const img = ramp(200, 200);
    const size = 100;
    // A face rotated by 0.25 rad, scaled and moved: its points are a known similarity of the template.
    const T = ALIGN_TEMPLATE;
    const s = { a: 1.3 * Math.cos(0.25), b: 1.3 * Math.sin(0.25), tx: 40, ty: 30 };
    const [l, r, m] = [T.leftEye, T.rightEye, T.mouth].map(([x, y]) => applySimilarity(s, [x * size, y * size]));
    const { face, transform } = alignFace(img, landmarksAt(l!, r!, m!), size);
    expect([face.width, face.height]).toEqual([size, size]);
    const inv = invertSimilarity(s);
    for (const k of ['a', 'b', 'tx', 'ty'] as const) expect(transform[k]).toBeCloseTo(inv[k], 9);
    // The eyes land level, on the template's row.
    expect(applySimilarity(transform, l!)[1]).toBeCloseTo(T.leftEye[1] * size, 9);
    expect(applySimilarity(transform, r!)[1]).toBeCloseTo(T.rightEye[1] * size, 9);
    // With points already in template proportions (scale 1/2, shifted) the fit is a closed form.
    const exact = landmarksAt([T.leftEye[0] * 50 + 20, T.leftEye[1] * 50 + 10], [T.rightEye[0] * 50 + 20, T.rightEye[1] * 50 + 10], [T.mouth[0] * 50 + 20, T.mouth[1] * 50 + 10]);
    const e = alignFace(img, exact, size).transform;
    expect(e.a).toBeCloseTo(2, 10);
    expect(e.b).toBeCloseTo(0, 10);
    expect(e.tx).toBeCloseTo(-40, 8);
    expect(e.ty).toBeCloseTo(-20, 8);
    // Then output pixel (i, j) samples source (20 + (i + 0.5) / 2, 10 + (j + 0.5) / 2).
    const out = alignFace(img, exact, size).face;
    expect(out.data[(40 * size + 60) * 3]).toBe(Math.round(20 + 60.5 / 2 - 0.5));
  });
});

describe('frameImage', () => {
  const nets = (boxes: Array<Array<{ x: number; y: number; width: number; height: number; score: number }>>): FramingNets & { seen: number[] } => {
    const seen: number[] = [];
    let call = 0;
    return {
      seen,
      detector: {
        async detect(image) {
          seen.push(image.width);
          return boxes[call++] ?? [];
        },
      },
      landmarker: {
        async landmarks(_image, box) {
          const u = box.width / 100;
          return landmarksAt([box.x + 34 * u, box.y + 46 * u], [box.x + 66 * u, box.y + 46 * u], [box.x + 50 * u, box.y + 82 * u]);
        },
      },
    };
  };

  it('counts detected, upscaled and whole-image cases', async () => {
    const f = parseFraming({ kind: 'align', size: 32, upscale: 96 });
    const img = ramp(48, 48);
    const a = nets([[{ x: 4, y: 4, width: 40, height: 40, score: 0.9 }]]);
    expect((await frameImage(img, f, a)).case).toBe('detected');
    expect(a.seen).toEqual([48]);
    const b = nets([[], [{ x: 8, y: 8, width: 80, height: 80, score: 0.9 }]]);
    const rb = await frameImage(img, f, b);
    expect(rb.case).toBe('upscaled');
    expect(b.seen).toEqual([48, 96]);
    const c = nets([[], []]);
    const rc = await frameImage(img, f, c);
    expect(rc.case).toBe('whole-image');
    expect([rc.image.width, rc.image.height]).toEqual([32, 32]);
    // The upscaled box maps back to the image's pixels: same face as a direct detection of that box.
    const d = nets([[{ x: 4, y: 4, width: 40, height: 40, score: 0.9 }]]);
    expect((await frameImage(img, f, d)).image.data).toEqual(rb.image.data);
    await expect(frameImage(img, f)).rejects.toThrow(/needs the zoo face detector/);
  });

  it('resize is the identity and centre-crop is deterministic', async () => {
    const img = ramp(12, 10);
    expect((await frameImage(img, parseFraming({ kind: 'resize' }))).image).toBe(img);
    const c1 = await frameImage(img, parseFraming({ kind: 'centre-crop', scale: 0.8 }));
    expect(c1.image.width).toBe(8);
    expect(c1.case).toBeUndefined();
  });
});
