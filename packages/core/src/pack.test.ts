import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, type InstalledProject } from '../../../tools/testing/pack-install.js';

// What a stranger gets from `npm install @dfd/core`: the packed dist/ in an empty project, its
// dependencies (tsyringe, reflect-metadata, rxjs) from the registry, imported by plain Node ESM.
const CORE_DIR = fileURLToPath(new URL('..', import.meta.url));

describe('@dfd/core installed from its npm pack tarball', () => {
  let project: InstalledProject;

  beforeAll(async () => {
    project = await packAndInstall({ packageDirs: [CORE_DIR] });
  }, 120_000);

  afterAll(async () => {
    await project?.dispose();
  });

  it('ships dist (JS + types) and README, no sources or tests', () => {
    const [core] = project.packed;
    expect(core!.name).toBe('@dfd/core');
    expect(core!.files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/container.js', 'dist/bus.js']));
    expect(core!.files.filter((f) => f.startsWith('src/') || /\.test\./.test(f))).toEqual([]);
  });

  it('two containers from a plain ESM script are isolated', async () => {
    const res = await project.run(`
      import { createContainer, TOKENS, EventBus, Rng, injectable, inject } from '@dfd/core';

      const a = createContainer({ config: { name: 'a' }, seed: 7 });
      const b = createContainer({ config: { name: 'b' }, seed: 7 });
      const seenA = [];
      const seenB = [];
      a.resolve(TOKENS.Bus).subscribe('warning', (e) => void seenA.push(e.message));
      b.resolve(TOKENS.Bus).subscribe('warning', (e) => void seenB.push(e.message));
      a.resolve(TOKENS.Bus).emit({ type: 'warning', source: 'pack-test', message: 'only for a' });
      await a.resolve(TOKENS.Bus).drain();
      await b.resolve(TOKENS.Bus).drain();

      // Constructor injection through the installed tsyringe + reflect-metadata.
      class Probe { constructor(bus, config) { this.bus = bus; this.config = config; } }
      inject(TOKENS.Bus)(Probe, undefined, 0);
      inject(TOKENS.Config)(Probe, undefined, 1);
      injectable()(Probe);
      const probeA = a.resolve(Probe);

      console.log(JSON.stringify({
        seenA, seenB,
        sameBus: a.resolve(TOKENS.Bus) === b.resolve(TOKENS.Bus),
        busIsEventBus: a.resolve(TOKENS.Bus) instanceof EventBus,
        configs: [a.resolve(TOKENS.Config).name, b.resolve(TOKENS.Config).name],
        rngIsRng: a.resolve(TOKENS.Rng) instanceof Rng,
        sameRng: a.resolve(TOKENS.Rng) === b.resolve(TOKENS.Rng),
        firstDraws: [a.resolve(TOKENS.Rng).nextUint32(), b.resolve(TOKENS.Rng).nextUint32()],
        probeBusIsA: probeA.bus === a.resolve(TOKENS.Bus),
        probeConfig: probeA.config.name,
      }));
    `);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    expect(out.seenA).toEqual(['only for a']);
    expect(out.seenB).toEqual([]);
    expect(out.sameBus).toBe(false);
    expect(out.busIsEventBus).toBe(true);
    expect(out.configs).toEqual(['a', 'b']);
    expect(out.rngIsRng).toBe(true);
    expect(out.sameRng).toBe(false);
    expect(out.firstDraws[0]).toBe(out.firstDraws[1]);
    expect(out.probeBusIsA).toBe(true);
    expect(out.probeConfig).toBe('a');
  });
});
