// `npm run pack:all`: builds (when stale) and packs every publishable workspace package (the ones
// not marked private) into dist-tarballs/ (or the folder given as the first argument), dependencies
// first, and prints the one `npm install` line that installs them in another project, so the
// packages can be tried before they are published (docs/how-to-programmatic.md, "Before the
// packages are published").
import { mkdirSync, readdirSync, readFileSync, existsSync, renameSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ensureBuilt, npmPack, REPO_ROOT } from './testing/pack-install.js';

interface Manifest {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
}

/** The publishable workspace packages (packages/*, plugins/*), each after the workspace packages it depends on. */
export function publishablePackages(root = REPO_ROOT): Array<{ name: string; dir: string }> {
  const workspace = new Map<string, { dir: string; manifest: Manifest }>();
  for (const group of ['packages', 'plugins']) {
    for (const entry of readdirSync(join(root, group)).sort()) {
      const dir = join(root, group, entry);
      if (!existsSync(join(dir, 'package.json'))) continue;
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
      if (manifest.private !== true) workspace.set(manifest.name, { dir, manifest });
    }
  }
  const order: string[] = [];
  const visit = (name: string): void => {
    if (order.includes(name)) return;
    for (const dep of Object.keys(workspace.get(name)!.manifest.dependencies ?? {})) if (workspace.has(dep)) visit(dep);
    order.push(name);
  };
  for (const name of workspace.keys()) visit(name);
  return order.map((name) => ({ name, dir: workspace.get(name)!.dir }));
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? join(REPO_ROOT, 'dist-tarballs'));
  mkdirSync(out, { recursive: true });
  const files: string[] = [];
  for (const { name, dir } of publishablePackages()) {
    const built = await ensureBuilt(dir, 300_000);
    const packed = await npmPack(dir, out, 120_000);
    // A stable name (no version) so the documented install line stays the same across versions.
    const stable = join(out, `${name.replace(/^@/, '').replace('/', '-')}.tgz`);
    renameSync(packed.path, stable);
    files.push(stable);
    process.stdout.write(`${name}@${packed.version}${built ? ' (built)' : ''} -> ${relative(process.cwd(), stable)}\n`);
  }
  process.stdout.write(`\n${files.length} packages in ${out}. In another project:\n  npm install ${out}/*.tgz @tensorflow/tfjs-core@4.22.0\n`);
}

if (resolve(process.argv[1] ?? '') === resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`pack:all: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
