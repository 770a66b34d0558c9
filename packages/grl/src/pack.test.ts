import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, type InstalledProject } from '../../../tools/testing/pack-install.js';

// What a stranger gets from `npm install @dfd/grl @tensorflow/tfjs-core @tensorflow/tfjs-layers`:
// the built dist/ from the packed tarball, in an empty project, imported by plain Node ESM.
const GRL_DIR = fileURLToPath(new URL('..', import.meta.url));

describe('@dfd/grl installed from its npm pack tarball', () => {
  let project: InstalledProject;

  beforeAll(async () => {
    project = await packAndInstall({
      packageDirs: [GRL_DIR],
      deps: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-cpu'],
    });
  }, 120_000);

  afterAll(async () => {
    await project?.dispose();
  });

  it('ships dist (JS + types) and README only, with tfjs as peers', () => {
    const [grl] = project.packed;
    expect(grl!.name).toBe('@dfd/grl');
    expect(grl!.files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/layer.js', 'dist/op.js', 'dist/schedules.js']));
    expect(grl!.files.filter((f) => f.startsWith('src/') || /\.test\./.test(f))).toEqual([]);
  });

  it('op, layer, schedule and save/load work from a plain ESM script', async () => {
    const res = await project.run(`
      import * as tf from '@tensorflow/tfjs-core';
      import '@tensorflow/tfjs-backend-cpu';
      import { layers, sequential, loadLayersModel } from '@tensorflow/tfjs-layers';
      import { gradientReversal, GradientReversal, dannLambda } from '@dfd/grl';
      import { readFileSync } from 'node:fs';

      await tf.setBackend('cpu');
      const x = tf.tensor1d([1, 2, 3]);
      const opGrad = tf.grad((v) => tf.sum(tf.square(gradientReversal(v, 0.5))))(x);

      const m = sequential();
      m.add(layers.dense({ units: 1, inputShape: [3], useBias: false, kernelInitializer: 'ones', name: 'pre' }));
      m.add(new GradientReversal({ schedule: { kind: 'dann' }, progress: 0.5, name: 'grl' }));
      const grads = tf.variableGrads(() => tf.sum(m.apply(tf.ones([2, 3]))));
      const kernelGrad = Object.values(grads.grads)[0];

      let saved;
      await m.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
      const loaded = await loadLayersModel(tf.io.fromMemory(saved));
      const grl = loaded.getLayer('grl');
      const pkg = JSON.parse(readFileSync(new URL('./node_modules/@dfd/grl/package.json', import.meta.url), 'utf8'));

      console.log(JSON.stringify({
        forward: Array.from(gradientReversal(x, 0.5).dataSync()),
        opGrad: Array.from(opGrad.dataSync()),
        kernelGrad: Array.from(kernelGrad.dataSync()),
        dann: dannLambda(0.5),
        loadedIsGrl: grl instanceof GradientReversal,
        loadedLambda: grl.lambda,
        loadedSchedule: grl.schedule,
        backend: tf.getBackend(),
        peer: pkg.peerDependencies,
        deps: pkg.dependencies ?? null,
      }));
    `);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    expect(out.forward).toEqual([1, 2, 3]);
    // d/dx sum(x^2) = 2x, reversed and scaled by 0.5: -x.
    expect(out.opGrad).toEqual([-1, -2, -3]);
    // d/dW sum(x W) over 2 rows of ones = 2 per weight, reversed by lambda = tanh(2.5).
    const lambda = Math.tanh(2.5);
    expect(out.dann).toBeCloseTo(lambda, 14);
    out.kernelGrad.forEach((g: number) => expect(g).toBeCloseTo(-2 * lambda, 5));
    expect(out.loadedIsGrl).toBe(true);
    expect(out.loadedLambda).toBeCloseTo(lambda, 14);
    expect(out.loadedSchedule).toEqual({ kind: 'dann' });
    expect(out.backend).toBe('cpu');
    expect(Object.keys(out.peer).sort()).toEqual(['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']);
    expect(out.deps).toBeNull();
  });

  it('the README examples run from the installed package and print what their comments say', async () => {
    const readme = readFileSync(join(project.projectDir, 'node_modules/@dfd/grl/README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(3);
    const norm = (s: string) => s.replace(/\s+/g, '').replace(/"/g, "'");
    for (const block of blocks) {
      const expected = [...block.matchAll(/^\s*console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => norm(m[1]!));
      expect(expected.length).toBeGreaterThan(0);
      const res = await project.run(block);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.trim().split('\n').map(norm)).toEqual(expected);
    }
  });
});
