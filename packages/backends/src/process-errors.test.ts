import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DfdError } from '@dfd/core';
import { describe, expect, it } from 'vitest';
import { formatUncaughtError, replaceEmscriptenProcessHandlers } from './process-errors.js';

const root = resolve(import.meta.dirname, '../../..');

/** Runs `source` as a user's .mjs in its own process (workspace sources, as the CLI's dev entry). */
function runScript(source: string): { status: number | null; stderr: string; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dfd-uncaught-'));
  // Outside the repository, with the workspace's node_modules in sight (as an installed project).
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const file = join(dir, 'user.mjs');
  writeFileSync(file, source);
  const res = spawnSync(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, DFD_DEBUG: '' } });
  return { status: res.status, stderr: res.stderr, stdout: res.stdout };
}

describe('formatUncaughtError', () => {
  it('prints a dfd error as one line with its code, another error with a few frames', () => {
    expect(formatUncaughtError(new DfdError('E_X', 'a.json: field b: give a number'), {})).toBe('dfd: E_X: a.json: field b: give a number\n');
    const lines = formatUncaughtError(new TypeError('boom'), {}).trimEnd().split('\n');
    expect(lines[0]).toBe('dfd: TypeError: boom');
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(formatUncaughtError(new TypeError('boom'), { DFD_DEBUG: '1' }).split('\n').length).toBeGreaterThan(lines.length - 1);
    expect(formatUncaughtError('plain', {})).toBe('dfd: uncaught string: plain\n');
  });

  it('removes only handlers shaped like Emscripten\'s', () => {
    // The exact sources of tfjs-backend-wasm 4.22's builds (wasm-out/*.js).
    const em = new Function('ExitStatus', 'return function(ex){if(!(ex instanceof ExitStatus)){throw ex}}')(class {}) as () => void;
    const rej = new Function('return function(reason){throw reason}')() as () => void;
    const mine = (): void => undefined;
    process.on('uncaughtException', em);
    process.on('unhandledRejection', rej);
    process.on('unhandledRejection', mine);
    try {
      expect(replaceEmscriptenProcessHandlers()).toBe(2);
      expect(process.listeners('uncaughtException')).not.toContain(em);
      expect(process.listeners('unhandledRejection')).not.toContain(rej);
      expect(process.listeners('unhandledRejection')).toContain(mine);
    } finally {
      process.removeListener('unhandledRejection', mine);
      for (const fn of process.listeners('uncaughtException')) if (fn.name === 'dfdUncaught') process.removeListener('uncaughtException', fn);
    }
  });
});

describe('uncaught errors after the wasm backend started (user scripts)', () => {
  it('a rejected top-level await prints one dfd line and exits 1, not the wasm module source and 7', () => {
    const r = runScript(
      "import { useBackend } from '@dfd/backends';\nimport { DfdError } from '@dfd/core';\nawait useBackend('wasm');\n" +
        "await Promise.resolve();\nthrow new DfdError('E_USER', 'data.csv line 3: field label: expected 0..6');\n",
    );
    expect(r.stderr).toBe('dfd: E_USER: data.csv line 3: field label: expected 0..6\n');
    expect(r.status).toBe(1);
  }, 70_000);

  it('another error gets its first line and a short stack; an application handler of its own still decides', () => {
    const r = runScript("import { useBackend } from '@dfd/backends';\nawait useBackend('wasm');\nsetTimeout(() => { throw new RangeError('late'); }, 1);\n");
    expect(r.stderr.split('\n')[0]).toBe('dfd: RangeError: late');
    expect(r.stderr.length).toBeLessThan(1000);
    expect(r.status).toBe(1);
    const own = runScript(
      "import { useBackend } from '@dfd/backends';\nawait useBackend('wasm');\n" +
        "process.on('uncaughtException', (e) => { console.log('mine: ' + e.message); process.exit(3); });\nsetTimeout(() => { throw new Error('x'); }, 1);\n",
    );
    expect(own.stdout).toBe('mine: x\n');
    expect(own.status).toBe(3);
  }, 130_000);
});
