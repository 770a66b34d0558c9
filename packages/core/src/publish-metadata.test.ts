import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Repository-wide publishing rules, checked here (the package everything depends on) because a
// stranger meets them in every tarball: what npm shows and what `npm install` checks.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const publishable = ['packages', 'plugins'].flatMap((group) =>
  readdirSync(join(ROOT, group))
    .map((name) => join(ROOT, group, name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown> }))
    .filter(({ pkg }) => pkg.private !== true),
);
const checked = ['@dfd/core', '@dfd/grl', '@dfd/backends', '@dfd/datasets', '@dfd/model', '@dfd/trainer', '@dfd/cli', '@dfd/plugin-console'];

describe('publishable packages', () => {
  it('are found', () => {
    const names = publishable.map((p) => p.pkg.name);
    for (const n of checked) expect(names).toContain(n);
  });

  it.each(publishable.filter((p) => checked.includes(p.pkg.name as string) || existsSync(join(p.dir, 'LICENSE'))).map((p) => [p.pkg.name as string, p] as const))(
    '%s: engines, LICENSE shipped, no source maps, bin paths npm accepts, README links that resolve on npm',
    (_name, { dir, pkg }) => {
      expect(pkg.engines).toEqual({ node: '>=20.19' });
      expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
      expect(pkg.files).toEqual(expect.arrayContaining(['LICENSE', '!dist/**/*.map']));
      for (const path of Object.values((pkg.bin ?? {}) as Record<string, string>)) expect(path).not.toMatch(/^\.\//);
      const readme = readFileSync(join(dir, 'README.md'), 'utf8');
      expect(readme.match(/\]\((?!https?:|#)[^)]*\)/g) ?? []).toEqual([]);
    },
  );

  it('@dfd/trainer ships its programmatic example; sharp is an optional peer of @dfd/datasets', () => {
    const trainer = publishable.find((p) => p.pkg.name === '@dfd/trainer')!;
    expect(trainer.pkg.files).toContain('examples');
    expect(existsSync(join(trainer.dir, 'examples', 'programmatic.mjs'))).toBe(true);
    const datasets = publishable.find((p) => p.pkg.name === '@dfd/datasets')!.pkg;
    expect((datasets.dependencies as Record<string, string>).sharp).toBeUndefined();
    expect((datasets.peerDependencies as Record<string, string>).sharp).toBeDefined();
    expect(datasets.peerDependenciesMeta).toEqual({ sharp: { optional: true } });
  });

  it('the TypeScript build emits no source maps (they would point at the unshipped src/)', () => {
    const base = JSON.parse(readFileSync(join(ROOT, 'tsconfig.base.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    expect(base.compilerOptions.sourceMap).toBe(false);
    expect(base.compilerOptions.declarationMap).toBe(false);
  });
});
