import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, REPO_ROOT, type InstalledProject } from '../../../tools/testing/pack-install.js';
import { checkExampleOutput, EXAMPLE_ARGS } from './test-utils/example.js';

// What a stranger gets from the README's `npm install @dfd/trainer @dfd/plugin-schedulers @dfd/plugin-jsonl-logger @tensorflow/tfjs-core`: the packed
// @dfd/trainer and the workspace packages it depends on (transitively; from the registry once
// published), tfjs-core and the rest from the registry, in an empty project; then the example the
// package ships, run with plain Node as its header says.
interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
}
const workspace = new Map<string, { dir: string; manifest: Manifest }>();
for (const group of ['packages', 'plugins']) {
  for (const name of readdirSync(join(REPO_ROOT, group))) {
    const dir = join(REPO_ROOT, group, name);
    if (!existsSync(join(dir, 'package.json'))) continue;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
    workspace.set(manifest.name, { dir, manifest });
  }
}

/** `name` and the workspace packages it depends on, dependencies first (the order they build in). */
function closure(name: string, seen = new Set<string>(), order: string[] = []): string[] {
  if (seen.has(name)) return order;
  seen.add(name);
  for (const dep of Object.keys(workspace.get(name)!.manifest.dependencies ?? {})) if (workspace.has(dep)) closure(dep, seen, order);
  order.push(name);
  return order;
}

describe('@dfd/trainer installed from its npm pack tarball, with its example', () => {
  let project: InstalledProject;
  // The example composes its plugins itself (the trainer imports none): the README's install line names them.
  const packages = ['@dfd/trainer', '@dfd/plugin-schedulers', '@dfd/plugin-jsonl-logger'].reduce<string[]>((order, name) => closure(name, new Set(order), order), []);

  beforeAll(async () => {
    project = await packAndInstall({ packageDirs: packages.map((n) => workspace.get(n)!.dir), deps: ['@tensorflow/tfjs-core'], timeoutMs: 240_000 });
  }, 600_000);

  afterAll(async () => {
    await project?.dispose();
  });

  it('ships dist, README, LICENSE and the example; no sources, tests or source maps', () => {
    const trainer = project.packed.find((p) => p.name === '@dfd/trainer')!;
    expect(trainer.files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'examples/programmatic.mjs']));
    for (const p of project.packed) {
      expect(p.files.filter((f) => f.startsWith('src/') || /\.test\.|\.map$/.test(f)), p.name).toEqual([]);
      expect(p.files, p.name).toContain('LICENSE');
    }
  });

  it('examples/programmatic.mjs runs with plain Node: backend, dataset plugin over image files, callback plugin, training, evaluation, events', async () => {
    const out = join(project.projectDir, 'example-run');
    const res = await project.node(['node_modules/@dfd/trainer/examples/programmatic.mjs', '--out', out, ...EXAMPLE_ARGS], { timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    checkExampleOutput(res.stdout, out);
    expect(res.stderr).not.toMatch(/node backend|No backend found|no image decoder/);
  }, 300_000);
});
