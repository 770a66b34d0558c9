import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, REPO_ROOT, type InstalledProject } from '../../../tools/testing/pack-install.js';

// What a stranger gets from `npm install @dfd/datasets @tensorflow/tfjs-core` (without sharp, an
// optional peer): the packed @dfd/datasets with its workspace dependencies (@dfd/core,
// @dfd/backends), the rest from the registry, in an empty project; the README example as written.
const DATASETS_DIR = fileURLToPath(new URL('..', import.meta.url));

describe('@dfd/datasets installed from its npm pack tarball', () => {
  let project: InstalledProject;

  beforeAll(async () => {
    project = await packAndInstall({
      packageDirs: [join(REPO_ROOT, 'packages/core'), join(REPO_ROOT, 'packages/backends'), DATASETS_DIR],
      deps: ['@tensorflow/tfjs-core'],
      timeoutMs: 240_000,
    });
  }, 600_000);

  afterAll(async () => {
    await project?.dispose();
  });

  it('installs without sharp (an optional peer) and ships no sources, tests or source maps', () => {
    expect(existsSync(join(project.projectDir, 'node_modules/sharp'))).toBe(false);
    const datasets = project.packed.find((p) => p.name === '@dfd/datasets')!;
    expect(datasets.files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'dist/index.js', 'dist/node.js']));
    expect(datasets.files.filter((f) => f.startsWith('src/') || /\.test\.|\.map$/.test(f))).toEqual([]);
  });

  it('the README example runs as written (no backend set up) and prints what its comments say', async () => {
    const readme = readFileSync(join(project.projectDir, 'node_modules/@dfd/datasets/README.md'), 'utf8');
    const [block] = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const expected = [...block!.matchAll(/console\.log\(.*\); \/\/ (\S+(?: \S+)?)/gm)].map((m) => m[1]!);
    expect(expected).toEqual(['32x90x90x3 int32', '1 0']);
    const res = await project.run(block!);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split('\n')).toEqual([expected[0], expected[0], expected[1]]);
  });

  it('decoding an image file without sharp says what to install', async () => {
    const res = await project.run(`
      import { decodeImage } from '@dfd/datasets';
      import '@dfd/datasets/node';
      try { await decodeImage({ kind: 'file', path: 'face.jpg' }); } catch (e) { console.log(e.code, e.message); }
    `);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^E_SHARP_MISSING cannot decode face\.jpg: .*'sharp' package, which is not installed .*npm install sharp/);
  });
});
