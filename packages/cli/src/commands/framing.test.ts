import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDfdNet, modelFraming, setModelFraming } from '@dfd/model';
import { loadModelDir, saveModelDir } from '@dfd/model/node';
import { centreCrop } from '@dfd/zoo';
import { encodePng } from '@dfd/zoo/faces';
import { main } from '../main.js';
import { predictImages } from './predict.js';

// A saved model records its framing in model.json; dfd predict and dfd eval apply it unless
// --framing says otherwise.
const work = mkdtempSync(join(tmpdir(), 'dfd-framing-cli-'));
const modelDir = join(work, 'model');
const root = join(work, 'data');
const wide = join(work, 'wide.png');
const cropped = join(work, 'cropped.png');
const cacheDir = join(work, 'cache');
const savedCache = process.env.DFD_CACHE_DIR;
afterAll(() => {
  if (savedCache === undefined) delete process.env.DFD_CACHE_DIR;
  else process.env.DFD_CACHE_DIR = savedCache;
  rmSync(work, { recursive: true, force: true });
});

/** A 48x24 image: a textured centre square on a contrasting border (a centre crop changes what the model sees). */
function wideImage(seed: number) {
  const data = new Uint8Array(48 * 24 * 3);
  for (let y = 0; y < 24; y++) for (let x = 0; x < 48; x++) {
    const inside = x >= 18 && x < 30 && y >= 6 && y < 18;
    data.set(inside ? [(x * 37 + seed * 11) % 256, (y * 53) % 256, ((x ^ y) * 29) % 256] : [250 - seed * 20, 10, 200], (y * 48 + x) * 3);
  }
  return { width: 48, height: 24, data };
}

async function dfd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    return { code: await main(['node', 'dfd', ...args]), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = createDfdNet({ variant: 'base', width: 0.0625, inputSize: 16, seed: 3 });
  setModelFraming(model, { kind: 'centre-crop', scale: 0.5 });
  await saveModelDir(model, modelDir);
  model.dispose();
  writeFileSync(wide, encodePng(wideImage(0)));
  writeFileSync(cropped, encodePng(centreCrop(wideImage(0), 0.5)));
  for (const [i, cls] of ['happy', 'sad', 'neutral'].entries()) {
    mkdirSync(join(root, 'test', cls), { recursive: true });
    writeFileSync(join(root, 'test', cls, `${i}.png`), encodePng(wideImage(i)));
  }
});

describe('a saved model framing', () => {
  it('is read back from model.json', async () => {
    const m = await loadModelDir(modelDir);
    expect(modelFraming(m)).toEqual({ kind: 'centre-crop', scale: 0.5 });
    m.dispose();
  });

  it('predict applies it: the wide image predicts as its centre crop; --framing resize overrides', async () => {
    const framed = await predictImages({ model: modelDir, images: [wide] });
    const byHand = await predictImages({ model: modelDir, images: [cropped], framing: { kind: 'resize' } });
    const whole = await predictImages({ model: modelDir, images: [wide], framing: { kind: 'resize' } });
    expect(framed.predictions[0]!.logits).toEqual(byHand.predictions[0]!.logits);
    expect(whole.predictions[0]!.logits).not.toEqual(framed.predictions[0]!.logits);
    const cli = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--json', '--framing', 'resize', wide);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout).predictions[0].logits).toEqual(whole.predictions[0]!.logits);
    const bad = await dfd('predict', '--model', modelDir, '--backend', 'cpu', '--framing', 'squash', wide);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/resize, centre-crop or align/);
  });

  it('eval applies it (the framed crops are what it reads), --framing resize overrides', async () => {
    process.env.DFD_CACHE_DIR = cacheDir;
    const plain = await dfd('eval', '-m', modelDir, '-t', `t=folder:${root}`, '--backend', 'cpu', '--json', '--framing', 'resize');
    expect(plain.code).toBe(0);
    expect(() => readdirSync(join(cacheDir, 'framing'))).toThrow();
    const r = await dfd('eval', '-m', modelDir, '-t', `t=folder:${root}`, '--backend', 'cpu', '--json');
    expect(r.code).toBe(0);
    const pngs = readdirSync(join(cacheDir, 'framing')).filter((f) => f.endsWith('.png'));
    expect(pngs).toHaveLength(3);
    const res = JSON.parse(r.stdout);
    expect(res.results[0].count).toBe(3);
    // The same as evaluating the crops made by hand, unframed.
    const byHand = join(work, 'cropped-data');
    for (const [i, cls] of ['happy', 'sad', 'neutral'].entries()) {
      mkdirSync(join(byHand, 'test', cls), { recursive: true });
      writeFileSync(join(byHand, 'test', cls, `${i}.png`), encodePng(centreCrop(wideImage(i), 0.5)));
    }
    const hand = await dfd('eval', '-m', modelDir, '-t', `t=folder:${byHand}`, '--backend', 'cpu', '--json', '--framing', 'resize');
    expect(JSON.parse(hand.stdout).results[0].confusion).toEqual(res.results[0].confusion);
  });
});

describe('dfd eval --preprocess', () => {
  it('is refused for a trained model and for an unknown value', async () => {
    const a = await dfd('eval', '-m', modelDir, '-t', `t=folder:${root}`, '--backend', 'cpu', '--preprocess', 'native');
    expect(a.code).not.toBe(0);
    expect(a.stderr).toMatch(/applies to a zoo classifier/);
    const b = await dfd('eval', '-m', 'faceapi:expression', '-t', `t=folder:${root}`, '--backend', 'cpu', '--preprocess', 'pil');
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/expected dfd or native/);
  });
});
