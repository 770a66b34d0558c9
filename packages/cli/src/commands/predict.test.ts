import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../main.js';

// End-to-end through the CLI entry point: dfd convert (PyTorch checkpoint) -> dfd predict --json,
// logits compared with PyTorch's (tools/pytorch/make_import_fixtures.py, tools/pytorch/dfd_ref.py).
const ROOT = resolve(import.meta.dirname, '../../../..');
const FIX = join(ROOT, 'packages/model/test/import-fixtures');
const work = mkdtempSync(join(tmpdir(), 'dfd-predict-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs `dfd <args>` in-process; returns exit code and what it printed. */
async function dfd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    const code = await main(['node', 'dfd', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

interface PredictJson {
  backend: string;
  labels: string[];
  predictions: Array<{ image: string; label: string; index: number; probability: number; logits: number[]; probabilities: number[] }>;
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
}

describe('dfd convert + dfd predict (reduced-width PyTorch checkpoint, committed)', () => {
  const expected = JSON.parse(readFileSync(join(FIX, 'cli_expected.json'), 'utf8')) as { logits: Record<string, number[]> };
  const modelDir = join(work, 'tiny-model');

  it('converts cli_dfdnet.pth, inferring variant, width and MI heads', async () => {
    const r = await dfd('convert', '--input', join(FIX, 'cli_dfdnet.pth'), '--out', modelDir, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.format).toBe('torch');
    expect(res.config).toMatchObject({ variant: 'att+eifp', width: 0.0625, layout: 'ddl', miDims: [16, 8], miHidden: 256, numClasses: 7, inputSize: 90 });
    expect(res.loaded).toBe(137);
    expect(res.ignored).toHaveLength(20);
    expect(res.ignored.every((k: string) => k.endsWith('.num_batches_tracked'))).toBe(true);
    expect(existsSync(join(modelDir, 'model.json')) && existsSync(join(modelDir, 'weights.bin'))).toBe(true);
  });

  it('predict --json gives PyTorch logits (RGB, greyscale, resized flat image) within 1e-3', async () => {
    const names = ['cli_face_rgb.png', 'cli_face_grey.png', 'cli_flat.png'];
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--json', ...names.map((n) => join(FIX, n)));
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as PredictJson;
    expect(out.backend).toBe('cpu');
    expect(out.labels).toEqual(['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral']);
    for (const [i, n] of names.entries()) {
      const p = out.predictions[i]!;
      expect(p.image).toBe(join(FIX, n));
      expect(maxAbsDiff(p.logits, expected.logits[n]!)).toBeLessThan(1e-3);
      const ref = expected.logits[n]!;
      const best = ref.indexOf(Math.max(...ref));
      expect(p.index).toBe(best);
      expect(p.label).toBe(out.labels[best]);
      const z = ref.map((v) => Math.exp(v - ref[best]!));
      const sum = z.reduce((a, b) => a + b, 0);
      expect(p.probability).toBeCloseTo(1 / sum, 4);
      expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // The greyscale and flat images really differ from the RGB one (the check can fail).
    expect(maxAbsDiff(expected.logits['cli_face_grey.png']!, expected.logits['cli_face_rgb.png']!)).toBeGreaterThan(0.05);
  });

  it('prints a table without --json', async () => {
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', join(FIX, 'cli_face_rgb.png'));
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^image\s+label\s+probability$/);
    expect(lines[1]).toMatch(/cli_face_rgb\.png\s+anger\s+0\.9\d{3}$/);
  });

  it('reports bad inputs as dfd errors', async () => {
    const bad = join(work, 'not-an-image.png');
    writeFileSync(bad, 'hello');
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dfd: .*not-an-image\.png: cannot decode the image/);
    const m = await dfd('predict', '--model', join(work, 'nope'), '--backend', 'cpu', join(FIX, 'cli_flat.png'));
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/^dfd: .*model\.json/);
  });

  it('refuses a model with NaN weights and weight paths leaving the model folder, exit 1 (issue 17)', async () => {
    const nan = join(work, 'nan-model');
    cpSync(modelDir, nan, { recursive: true });
    const w = readFileSync(join(nan, 'weights.bin'));
    new Float32Array(w.buffer, w.byteOffset, w.length / 4).fill(Number.NaN, 0, 100);
    writeFileSync(join(nan, 'weights.bin'), w);
    for (const args of [['--json'], []]) {
      const r = await dfd('predict', '--model', nan, '--backend', 'cpu', ...args, join(FIX, 'cli_face_rgb.png'));
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^dfd: .*model\.json: 100 non-finite weight value\(s\) \(NaN or infinite\) in efe\.stem\.conv\.weight.*the model is unusable/);
    }
    const escape = join(work, 'escape-model');
    cpSync(modelDir, escape, { recursive: true });
    const json = JSON.parse(readFileSync(join(escape, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../tiny-model/weights.bin'];
    writeFileSync(join(escape, 'model.json'), JSON.stringify(json));
    const e = await dfd('predict', '--model', escape, '--backend', 'cpu', '--json', join(FIX, 'cli_face_rgb.png'));
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/weight path "\.\.\/tiny-model\/weights\.bin" must be a relative path inside the model folder/);
  });

  it('a missing image is a wrong path, not a dataset problem (issue 17)', async () => {
    const r = await dfd('predict', '--model', modelDir, '--backend', 'cpu', join(work, 'no-such-face.png'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`dfd: ${join(work, 'no-such-face.png')}: no such file; check the path\n`);
    expect(r.stderr).not.toMatch(/dataset/);
  });

  it('refuses a FIFO named *.jpg at once and a PNG whose header claims 16000x16000 before decoding it (issue 24)', async () => {
    const fifo = join(work, 'pipe.jpg');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    const f = await dfd('predict', '--model', modelDir, '--backend', 'cpu', fifo);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/pipe\.jpg: cannot decode image \(image is a named pipe \(FIFO\), not a regular file/);
    expect(Date.now() - t0).toBeLessThan(10000);
    // A valid PNG header (IHDR with its CRC) claiming 16000x16000, then a few bytes of data.
    const chunk = (type: string, data: Buffer) => {
      const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(data.length);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(td) >>> 0);
      return Buffer.concat([head, td, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(16000, 0);
    ihdr.writeUInt32BE(16000, 4);
    ihdr.set([8, 2, 0, 0, 0], 8);
    const huge = join(work, 'huge.png');
    writeFileSync(huge, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]));
    const h = await dfd('predict', '--model', modelDir, '--backend', 'cpu', huge);
    expect(h.code).toBe(1);
    expect(h.stderr).toMatch(/huge\.png: cannot decode image \(its header says 16000x16000 = 256,000,000 pixels, more than the 67,108,864 \(8192x8192\) dfd decodes; downscale it first\)/);
  });
});

function torchAvailable(): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return r.status === 0 ? null : `/usr/bin/python3 cannot import torch/numpy (${(r.stderr || String(r.error ?? '')).trim().split('\n').pop()})`;
}
const noTorch = torchAvailable();

describe.skipIf(noTorch !== null)(`full-width DFD-Net from PyTorch, end to end${noTorch ? ` (skipped: ${noTorch}; install python3-torch to run it)` : ''}`, () => {
  it('convert + predict --json on PNG/JPEG/WebP files match PyTorch logits within 1e-3', async () => {
    const dir = join(work, 'full');
    execFileSync('mkdir', ['-p', dir]);
    // Images written here (sharp): smooth colour pattern + noise, as PNG (lossless), JPEG and WebP
    // (lossy: PyTorch gets the pixels sharp decodes, which is what predict sees).
    const w = 90;
    const px = new Uint8Array(w * w * 3);
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3;
        px[i] = 128 + 100 * Math.sin(x / 8 + y / 13);
        px[i + 1] = 128 + 100 * Math.cos(y / 6);
        px[i + 2] = ((x * y) % 251) as number;
      }
    }
    const raw = { raw: { width: w, height: w, channels: 3 as const } };
    const files = {
      'face.png': await sharp(px, raw).png().toBuffer(),
      'face.jpg': await sharp(px, raw).jpeg({ quality: 85 }).toBuffer(),
      'face.webp': await sharp(px.map((v) => 255 - v), raw).webp({ quality: 80 }).toBuffer(),
    };
    const inputs = [];
    for (const [name, buf] of Object.entries(files)) {
      writeFileSync(join(dir, name), buf);
      const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([w, w, 3]);
      writeFileSync(join(dir, `${name}.rgb`), data);
      inputs.push({ name, raw: `${name}.rgb`, width: w, height: w });
    }
    writeFileSync(join(dir, 'inputs.json'), JSON.stringify({ images: inputs }));
    execFileSync('/usr/bin/python3', [join(ROOT, 'tools/pytorch/make_import_fixtures.py'), 'e2e', dir, '--base', '64'], { stdio: 'pipe' });
    const torchLogits = JSON.parse(readFileSync(join(dir, 'torch_logits.json'), 'utf8')) as Record<string, number[]>;

    const c = await dfd('convert', '--input', join(dir, 'dfdnet.pth'), '--out', join(dir, 'model'), '--json');
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).config).toMatchObject({ variant: 'att+eifp', width: 1, miDims: [256, 256] });
    const p = await dfd('predict', '--model', join(dir, 'model'), '--backend', 'cpu', '--json', ...Object.keys(files).map((n) => join(dir, n)));
    expect(p.code, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout) as PredictJson;
    const diffs = Object.keys(files).map((n, i) => maxAbsDiff(out.predictions[i]!.logits, torchLogits[n]!));
    console.log(`full-width e2e: max |logit - PyTorch| per image ${diffs.map((d) => d.toExponential(2)).join(', ')}`);
    for (const d of diffs) expect(d).toBeLessThan(1e-3);
  });
});
