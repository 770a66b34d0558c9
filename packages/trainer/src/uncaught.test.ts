import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// issue 27 item 1: a programmatic user's first mistake printed 55 KB of tfjs-wasm's minified
// source (Emscripten's process handlers rethrow) and exited 7. @dfd/backends replaces those
// handlers (src/process-errors.ts there): one dfd line, exit 1.
const root = resolve(import.meta.dirname, '../../..');

describe('a user script whose createTrainer rejects', () => {
  it('prints one line, dfd: <CODE>: <message>, and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-user-'));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const file = join(dir, 'train.mjs');
    writeFileSync(
      file,
      "import { createTrainer } from '@dfd/trainer/node';\n" +
        `const run = await createTrainer({ source: 'folder:${join(dir, 'missing')}', variant: 'base', backend: 'wasm', out: '${join(dir, 'run')}', epochs: 1 }, { plugins: [] });\n` +
        'await run.run();\n',
    );
    const res = spawnSync(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, DFD_DEBUG: '' } });
    expect(res.stderr).toMatch(new RegExp(`^dfd: E_DATASET_FORMAT: ${join(dir, 'missing')}: folder not found: .*\\n$`));
    expect(res.stderr.split('\n')).toHaveLength(2);
    expect(res.status).toBe(1);
  }, 70_000);
});
