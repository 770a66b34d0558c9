import { build, type BuildResult, type Metafile } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as main from './index.js';
import * as node from './node.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../../..');

/**
 * Bundles `entry` the way a browser app would (esbuild, platform browser, workspace packages from
 * their sources, tfjs left to the app). Never throws: a failed bundle comes back with its errors.
 */
async function bundleForBrowser(entry: string): Promise<{ errors: string[]; metafile?: Metafile; code: string }> {
  let result: BuildResult<{ write: false; metafile: true }>;
  try {
    result = await build({
      entryPoints: [join(HERE, entry)],
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      conditions: ['@dfd/source'],
      external: ['@tensorflow/*'],
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string } | null }> }).errors;
    if (!errors) throw err;
    return { errors: errors.map((e) => `${e.location?.file ?? '?'}: ${e.text}`), code: '' };
  }
  return { errors: result.errors.map((e) => e.text), metafile: result.metafile, code: result.outputFiles.map((f) => f.text).join('\n') };
}

describe('@dfd/trainer entries', () => {
  it('the main entry bundles for the browser: tfjs the only external, nothing from node:, sharp or the Node-only modules', async () => {
    const { errors, metafile, code } = await bundleForBrowser('index.ts');
    expect(errors).toEqual([]);
    const inputs = Object.keys(metafile!.inputs);
    expect(inputs.filter((f) => f.startsWith('node:') || /node_modules\/(sharp|@img)\//.test(f))).toEqual([]);
    const trainerFiles = inputs.filter((f) => f.startsWith('packages/trainer/src/')).map((f) => f.slice('packages/trainer/src/'.length));
    expect(trainerFiles).toContain('trainer.ts');
    expect(trainerFiles).toContain('checkpoint-store.ts');
    for (const nodeOnly of ['node.ts', 'checkpoint.ts', 'config-file.ts', 'run.ts', 'run-folder.ts', 'report.ts', 'images.ts', 'demo.ts', 'zoo.ts']) expect(trainerFiles).not.toContain(nodeOnly);
    // Every import left in the bundle is tfjs (the app brings its backend); no require() of a Node module.
    const external = Object.values(metafile!.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(external.length).toBeGreaterThan(0);
    expect(external.filter((p) => !p.startsWith('@tensorflow/'))).toEqual([]);
    expect(code).not.toMatch(/\brequire\(\s*["'](node:|fs|path|crypto|os)/);
  });

  it('the same check rejects the Node entry (node: modules, sharp): a Node import reaching the main entry fails the test above', async () => {
    const { errors } = await bundleForBrowser('node.ts');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toMatch(/Could not resolve "node:(fs|path|crypto|os)"/);
  });

  it('the main entry has the loop, tasks, AdamW, evaluation, data and checkpoint store; the Node helpers moved to @dfd/trainer/node', () => {
    for (const name of ['Trainer', 'composeTrainer', 'DfdTask', 'EifeTask', 'AdamW', 'evaluate', 'tensorBatchSource', 'loaderBatchSource', 'MemoryCheckpointStore', 'trainConfigSchema', 'mergeConfig', 'parseConfigText', 'CheckpointError']) {
      expect(main, name).toHaveProperty(name);
    }
    const moved = ['FsCheckpointStore', 'readCheckpoint', 'readConfigFile', 'createTrainer', 'createEifeTrainer', 'evaluateModelDir', 'writeRunReport', 'resultsTable', 'prepareRunFolder', 'LOCK_FILE', 'screenImages', 'runDemo', 'evaluateZooModel'];
    for (const name of moved) {
      expect(node, name).toHaveProperty(name);
      expect(main, name).not.toHaveProperty(name);
    }
  });
});
