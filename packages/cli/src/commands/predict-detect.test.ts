import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-utils/run-cli.js';
import type { RgbImage } from '@dfd/datasets';
import { boxIou, faceCanvas } from '../../../../tools/testing/face-canvas.js';
import { cropFace } from '@dfd/zoo';

// dfd predict --detect end to end: a tiny DFD-Net converted from the committed PyTorch fixture,
// images made here (synthetic faces pasted off-centre on larger canvases), the zoo detector
// from the installed @vladmandic/face-api (a dev dependency).
const ROOT = resolve(import.meta.dirname, '../../../..');
const FIX = join(ROOT, 'packages/model/test/import-fixtures');
const work = mkdtempSync(join(tmpdir(), 'dfd-predict-detect-'));
const modelDir = join(work, 'model');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs `dfd <args>` in-process; returns exit code and what it printed. */
const dfd = (...args: string[]) => runCli(args);

type Box = { x: number; y: number; width: number; height: number };
interface DetectJson {
  labels: string[];
  predictions: Array<{ image: string; face: number; box: Box & { score: number }; eyes?: { left: [number, number]; right: [number, number] }; label: string; index: number; probability: number; logits: number[]; probabilities: number[] }>;
  noFace: string[];
}

async function png(path: string, img: RgbImage): Promise<string> {
  await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toFile(path);
  return path;
}

const faces = [
  { x: 290, y: 30, size: 160, seed: 1 },
  { x: 20, y: 150, size: 120, seed: 5 },
];
/** The drawn face fills about the central 3/4 of its pasted square. */
const inner = (f: (typeof faces)[number]): Box => ({ x: f.x + f.size / 8, y: f.y + f.size / 8, width: (f.size * 3) / 4, height: (f.size * 3) / 4 });
let group: RgbImage;
let groupFile: string;
let blankFile: string;

beforeAll(async () => {
  const c = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', modelDir, '--json');
  expect(c.code, c.stderr).toBe(0);
  group = faceCanvas(480, 330, faces);
  groupFile = await png(join(work, 'group.png'), group);
  blankFile = await png(join(work, 'blank.png'), { width: 200, height: 150, data: new Uint8Array(200 * 150 * 3).fill(128) });
});

describe('dfd predict --detect', () => {
  it('--json: one prediction per face with its box and eyes; each equals predicting its eye-levelled crop alone; faceless images listed', async () => {
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--detect', '--detect-size', '320', '--json', groupFile, blankFile);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as DetectJson;
    expect(out.noFace).toEqual([blankFile]);
    expect(out.predictions).toHaveLength(2);
    expect(out.predictions.map((p) => [p.image, p.face])).toEqual([
      [groupFile, 0],
      [groupFile, 1],
    ]);
    expect(out.predictions[0]!.box.score).toBeGreaterThanOrEqual(out.predictions[1]!.box.score);
    // Each pasted face is found (IoU > 0.5 with its drawn region), by exactly one box.
    for (const f of faces) expect(out.predictions.filter((p) => boxIou(p.box, inner(f)) > 0.5)).toHaveLength(1);
    // The prediction of a face is the model's on its 20%-margin crop levelled by its eyes, written
    // out and predicted without --detect. The eyes lie inside the box, left of image left.
    for (const p of out.predictions) {
      const { left, right } = p.eyes!;
      for (const [x, y] of [left, right]) expect(x > p.box.x && x < p.box.x + p.box.width && y > p.box.y && y < p.box.y + p.box.height).toBe(true);
      expect(left[0]).toBeLessThan(right[0]);
      const crop = cropFace(group, p.box, { margin: 0.2, eyes: p.eyes! });
      const file = await png(join(work, `crop${p.face}.png`), crop);
      const plain = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--json', file);
      const q = (JSON.parse(plain.stdout) as DetectJson).predictions[0]!;
      expect(q.box).toBeUndefined();
      expect(Math.max(...q.logits.map((v, i) => Math.abs(v - p.logits[i]!)))).toBeLessThan(1e-5);
      expect(p.label).toBe(out.labels[p.index]);
      expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // The two faces are different inputs: their logits differ.
    expect(Math.max(...out.predictions[0]!.logits.map((v, i) => Math.abs(v - out.predictions[1]!.logits[i]!)))).toBeGreaterThan(1e-3);
  });

  it('prints one line per face with its box, and "no face found" for faceless images', async () => {
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--detect', '--detect-size', '320', '--margin', '0.3', blankFile, groupFile);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^image\s+face\s+box \(x,y,w,h\)\s+label\s+probability\s+score$/);
    const rows = lines.slice(1);
    expect(rows.filter((l) => l.startsWith(groupFile))).toHaveLength(2);
    expect(rows[0]).toMatch(/group\.png\s+0\s+\d+,\d+,\d+,\d+\s+(surprise|fear|disgust|happiness|sadness|anger|neutral)\s+[01]\.\d{4}\s+0\.\d{3}$/);
    expect(rows[2]).toMatch(/blank\.png\s+-\s+-\s+no face found/);
  });

  it('--no-align crops the box with its margin only (no eyes in the JSON)', async () => {
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--detect', '--no-align', '--detect-size', '320', '--json', groupFile);
    expect(r.code, r.stderr).toBe(0);
    const p = (JSON.parse(r.stdout) as DetectJson).predictions[0]!;
    expect(p.eyes).toBeUndefined();
    const file = await png(join(work, 'plain-crop.png'), cropFace(group, p.box, { margin: 0.2 }));
    const q = (JSON.parse((await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--json', file)).stdout) as DetectJson).predictions[0]!;
    expect(Math.max(...q.logits.map((v, i) => Math.abs(v - p.logits[i]!)))).toBeLessThan(1e-5);
  });

  it('rejects detector options without --detect, and bad values, naming the flag', async () => {
    const a = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--margin', '0.3', groupFile);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/--margin only applies with --detect/);
    const n = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--no-align', groupFile);
    expect(n.code).toBe(1);
    expect(n.stderr).toMatch(/--no-align only applies with --detect/);
    const b = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--detect', '--detect-size', '300', groupFile);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/--detect-size 300: must be a positive multiple of 32/);
  });
});
