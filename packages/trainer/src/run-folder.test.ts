import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { RunFolderError } from './errors.js';
import { LOCK_FILE, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, acquireRunLock, describeFsError, ensureWritableDir, pidAlive, prepareRunFolder } from './run-folder.js';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('run folder lock (issue 17)', () => {
  it('is exclusive and names its holder (pid, host, start time); released, it can be taken again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-lock-'));
    const lock = acquireRunLock(dir);
    const held = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    expect(held).toMatchObject({ pid: process.pid, host: hostname() });
    expect(Number.isNaN(Date.parse(held.started))).toBe(false);
    const err = (() => {
      try {
        acquireRunLock(dir);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RunFolderError);
    expect((err as Error).message).toContain(`is in use by another run: process ${process.pid} on ${hostname()}, started ${held.started}`);
    expect((err as Error).message).toContain(`delete ${join(dir, LOCK_FILE)}`);
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    acquireRunLock(dir).release();
  });

  it('takes over a stale lock (same host, process gone) and says so; a lock from another host is respected', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-lock-stale-'));
    const dead = deadPid();
    expect(pidAlive(dead)).toBe(false);
    expect(pidAlive(process.pid)).toBe(true);
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: '2026-01-01T00:00:00.000Z', command: 'dfd train' }));
    const warnings: string[] = [];
    const lock = acquireRunLock(dir, { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([`took over the stale lock of ${dir}: process ${dead} on ${hostname()} (started 2026-01-01T00:00:00.000Z) is no longer running`]);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: dead, host: 'other-host', started: '2026-01-01T00:00:00.000Z', command: 'dfd train' }));
    expect(() => acquireRunLock(dir)).toThrow(`process ${dead} on other-host, started 2026-01-01T00:00:00.000Z (dfd train)`);
    // Another host's lock whose heartbeat stopped more than LOCK_STALE_MS ago (a dead machine, a killed worker) is stale.
    const old = new Date(Date.now() - LOCK_STALE_MS - 60_000);
    utimesSync(join(dir, LOCK_FILE), old, old);
    const taken = acquireRunLock(dir, { onWarning: (m) => warnings.push(m) });
    expect(warnings[1]).toMatch(new RegExp(`^took over the stale lock of .*: process ${dead} on other-host \\(started 2026-01-01T00:00:00.000Z\\) has not refreshed it for \\d+ s$`));
    taken.release();
    // A lock file that cannot be parsed and is just being written is not taken over.
    writeFileSync(join(dir, LOCK_FILE), '');
    expect(() => acquireRunLock(dir)).toThrow(/is being locked by another run right now/);
  });
});

describe('run folder lock on exit', () => {
  it('a process that exits without releasing its locks leaves none behind', () => {
    const a = mkdtempSync(join(tmpdir(), 'dfd-lock-exit-'));
    const b = mkdtempSync(join(tmpdir(), 'dfd-lock-exit-'));
    const script = `import { acquireRunLock } from ${JSON.stringify(join(import.meta.dirname, 'run-folder.ts'))}; acquireRunLock(process.argv[1]); acquireRunLock(process.argv[2]); process.exit(0);`;
    const r = spawnSync(process.execPath, ['--conditions=@dfd/source', '--import', 'tsx', '--input-type=module', '-e', script, a, b], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(a, LOCK_FILE)) || existsSync(join(b, LOCK_FILE))).toBe(false);
  });
});

describe('run folder lock heartbeat', () => {
  it('a held lock refreshes its modification time every LOCK_HEARTBEAT_MS (what other hosts judge it by)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-lock-beat-'));
    const later = Date.now() + 3_600_000;
    vi.useFakeTimers({ now: later, toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const lock = acquireRunLock(dir);
      const path = join(dir, LOCK_FILE);
      const old = new Date(Date.now() - 3_600_000 * 2);
      utimesSync(path, old, old);
      vi.advanceTimersByTime(LOCK_HEARTBEAT_MS);
      expect(Math.abs(statSync(path).mtimeMs - (later + LOCK_HEARTBEAT_MS))).toBeLessThan(2000);
      lock.release();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('prepareRunFolder (issue 17)', () => {
  it('refuses a folder holding a previous run unless resumed or overwritten; --overwrite removes only what a run writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-prev-'));
    prepareRunFolder(dir).release();
    for (const n of ['config.json', 'report.json', 'report.md', 'metrics.jsonl', 'curves-loss.svg', 'confusion-wild.png', 'notes.txt']) writeFileSync(join(dir, n), 'x');
    mkdirSync(join(dir, 'checkpoints', 'step-00000001'), { recursive: true });
    mkdirSync(join(dir, 'model'));
    const err = (() => {
      try {
        prepareRunFolder(dir);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RunFolderError);
    expect((err as Error).message).toBe(`${dir} already holds a run (config.json, checkpoints, model, report.json, report.md, metrics.jsonl); continue it with --resume ${dir}, replace it with --overwrite, or choose another --out.`);
    // The refusal released the lock; a resume may go on.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    prepareRunFolder(dir, { resume: true }).release();
    const warnings: string[] = [];
    const lock = prepareRunFolder(dir, { overwrite: true, onWarning: (m) => warnings.push(m) });
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', LOCK_FILE]);
    expect(warnings[0]).toMatch(/--overwrite: removed the previous run's config\.json, checkpoints, model/);
    lock.release();
  });

  it('says in one line what is wrong with --out: a file, a path under a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-out-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    expect(() => ensureWritableDir(file)).toThrow(`--out ${file} is a file, not a folder; choose another --out.`);
    expect(() => ensureWritableDir(join(file, 'run', 'x'))).toThrow(`cannot create --out ${join(file, 'run', 'x')}: ${file} is a file, not a folder.`);
    expect(() => prepareRunFolder(join(file, 'run'))).toThrow(RunFolderError);
  });

  it('describeFsError names the path, the cause in words and the code', () => {
    const e = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', path: '/data/run/model/weights.bin' });
    expect(describeFsError(e)).toBe('cannot write /data/run/model/weights.bin: no space left on the device (ENOSPC)');
    expect(describeFsError(Object.assign(new Error('x'), { code: 'EROFS', syscall: 'mkdir', path: '/ro/run' }))).toBe('cannot mkdir /ro/run: the file system is read-only (EROFS)');
    expect(describeFsError(new Error('plain'))).toBeNull();
  });
});
