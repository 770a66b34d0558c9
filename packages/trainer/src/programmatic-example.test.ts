import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkExampleOutput, EXAMPLE_ARGS } from './test-utils/example.js';

// examples/programmatic.mjs, the example shipped in the package, run as a user runs it (its own
// process, no backend set up), here against the workspace sources; src/pack.test.ts runs the same
// file from the packed tarballs in an empty project.
const root = resolve(import.meta.dirname, '../../..');
const example = join(root, 'packages/trainer/examples/programmatic.mjs');

describe('examples/programmatic.mjs', () => {
  it('trains from image files through a custom dataset plugin, with a custom callback plugin, and evaluates the saved model', () => {
    const out = mkdtempSync(join(tmpdir(), 'dfd-example-'));
    const res = spawnSync(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', example, '--out', out, ...EXAMPLE_ARGS], { cwd: root, encoding: 'utf8', timeout: 110_000 });
    expect(res.status, res.stderr).toBe(0);
    checkExampleOutput(res.stdout, out);
    // No "install our node backend" banner, no other noise on stderr.
    expect(res.stderr).not.toMatch(/node backend/);
  });
});
