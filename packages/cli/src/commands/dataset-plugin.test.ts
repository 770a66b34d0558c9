import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-utils/run-cli.js';

// A user's dataset plugin whose samples are image FILES (decoded by the Node entry's sharp decoder)
// with expression and factor labels, used by every command that reads datasets.
let dir = '';
let plugin = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dfd-cli-dsplugin-'));
  for (let c = 0; c < 7; c++) {
    const png = await sharp(Buffer.alloc(8 * 8 * 3, 30 * c), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    await writeFile(join(dir, `c${c}.png`), png);
  }
  plugin = join(dir, 'mine.mjs');
  await writeFile(
    plugin,
    `import { join } from 'node:path';
    const dir = ${JSON.stringify(dir)};
    const make = (split, n) => Array.from({ length: n }, (_, i) => ({ id: split + i, expression: i % 7, factors: { tone: i % 2 }, image: { kind: 'file', path: join(dir, 'c' + (i % 7) + '.png') } }));
    export const datasetPlugin = { name: 'mine', description: 'png files', labels: { expression: true, factors: [{ name: 'tone', classes: 2 }] },
      async load() { return { name: 'mine:x', plugin: 'mine', hasExpression: true, factors: [{ name: 'tone', classes: 2 }], warnings: [], splits: { train: make('train', 8), test: make('test', 7) } }; } };`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const small = ['--epochs', '1', '--batch-size', '4', '--width', '0.0625', '--input-size', '16', '--no-console', '--backend', 'cpu'];

describe('--dataset-plugin and datasetPlugins on every command that reads datasets', () => {
  it('dfd train and dfd eval', async () => {
    const out = join(dir, 'run');
    const train = await runCli(['train', '--source', 'mine:x', '--target', 't=mine:x', '--variant', 'base', '--out', out, ...small, '--json', '--dataset-plugin', plugin]);
    expect(train.code, train.stderr).toBe(0);
    expect(JSON.parse(train.stdout).results[0]).toMatchObject({ target: 't', count: 7 });
    const evaluated = await runCli(['eval', '-m', out, '-t', 't=mine:x', '--json', '--backend', 'cpu', '--dataset-plugin', plugin]);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout).results[0]).toMatchObject({ target: 't', count: 7 });
    // Without it, the error names the option the command now has.
    const bad = await runCli(['eval', '-m', out, '-t', 't=mine:x', '--backend', 'cpu']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/no dataset plugin 'mine'.*add one with --dataset-plugin <module>/);
  });

  it('datasetPlugins in a config file (kept absolute in the run config for --resume), and dfd train-eife', async () => {
    const out = join(dir, 'run-config');
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ source: 'mine:x', targets: ['t=mine:x'], variant: 'base', out, datasetPlugins: [plugin] }));
    const train = await runCli(['train', '-c', config, ...small]);
    expect(train.code, train.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).datasetPlugins).toEqual([plugin]);
    const eife = await runCli(['train-eife', '--dataset', 'mine:x', '--factors', 'tone', '--out', join(dir, 'eife'), ...small, '--dataset-plugin', plugin]);
    expect(eife.code, eife.stderr).toBe(0);
    expect(eife.stdout).toMatch(/EIFE saved to .*; test accuracy: tone \d/);
    expect(existsSync(join(dir, 'eife', 'model', 'model.json'))).toBe(true);
  });
});
