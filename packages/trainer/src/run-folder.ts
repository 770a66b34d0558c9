import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describeFsError } from '@dfd/core';
import { RunFolderError } from './errors.js';

export { describeFsError };

/** Whether process `pid` runs on this machine (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The nearest ancestor of `p` that exists (p itself included). */
function nearestExisting(p: string): string {
  let cur = resolve(p);
  while (!existsSync(cur) && dirname(cur) !== cur) cur = dirname(cur);
  return cur;
}

/**
 * Creates `dir` (with its parents) and checks that it is a writable folder, with one clear line
 * when it is not: a file in the way, a read-only mount, no permission, a full disk.
 */
export function ensureWritableDir(dir: string): void {
  const target = resolve(dir);
  if (existsSync(target) && !statSync(target).isDirectory()) {
    throw new RunFolderError(target, `--out ${target} is a file, not a folder; choose another --out.`);
  }
  try {
    mkdirSync(target, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const base = nearestExisting(target);
    if (base !== target && !statSync(base).isDirectory()) {
      throw new RunFolderError(target, `cannot create --out ${target}: ${base} is a file, not a folder.`, { cause: err });
    }
    if (code === 'ENOENT' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
      // mkdir -p on a read-only mount can report ENOENT: say what is really wrong.
      const why = code === 'EROFS' ? 'EROFS' : notWritable(base);
      if (why) throw new RunFolderError(target, `cannot create --out ${target}: ${base} is not writable (${why === 'EROFS' ? 'read-only file system' : 'no permission'}).`, { cause: err });
    }
    throw new RunFolderError(target, `cannot create --out ${target}: ${describeFsError(err, target) ?? String(err)}.`, { cause: err });
  }
  const why = notWritable(target);
  if (why) throw new RunFolderError(target, `--out ${target} is not writable (${why === 'EROFS' ? 'read-only file system' : 'no permission'}).`);
}

/** Why `path` is not writable (the error code: EROFS, EACCES...), or null when it is. */
function notWritable(path: string): string | null {
  try {
    accessSync(path, constants.W_OK);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EACCES';
  }
}

/** The lock file of a run folder. */
export const LOCK_FILE = 'run.lock';

/** How often a held lock's modification time is refreshed (its heartbeat). */
export const LOCK_HEARTBEAT_MS = 30_000;

/**
 * A lock from another host whose heartbeat is older than this is stale (its process cannot be
 * checked from here: a machine that died, or a killed grid worker on shared storage).
 */
export const LOCK_STALE_MS = 5 * 60_000;

/** What a lock file holds. */
export interface RunLockInfo {
  pid: number;
  host: string;
  /** ISO time the holder started. */
  started: string;
  /** The holder's command line. */
  command: string;
}

/** An exclusive lock on a run folder; {@link release} removes it (also on process exit). */
export interface RunLock {
  readonly path: string;
  readonly info: RunLockInfo;
  release(): void;
}

/** Releases of the locks this process holds, run on exit (one listener for all of them). */
const heldLocks = new Set<() => void>();
let exitHook = false;

function readLock(path: string): RunLockInfo | null {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as Partial<RunLockInfo>;
    return typeof j.pid === 'number' && typeof j.host === 'string' ? { pid: j.pid, host: j.host, started: String(j.started), command: String(j.command ?? '') } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the exclusive lock of run folder `dir` (`<dir>/run.lock`, created with O_EXCL, holding
 * pid, host, start time and command line). A lock held by a live process, or by any process on
 * another host, is a {@link RunFolderError} naming the holder. A lock whose process is gone
 * (same host, pid not running), or one from another host whose heartbeat (modification time,
 * refreshed every 30 s while held) is older than 5 minutes, is stale: it is taken over and
 * `onWarning` says so.
 */
export function acquireRunLock(dir: string, options: { onWarning?: (message: string) => void } = {}): RunLock {
  const path = join(resolve(dir), LOCK_FILE);
  const info: RunLockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new RunFolderError(path, `cannot lock the run folder: ${describeFsError(err, path) ?? String(err)}.`, { cause: err });
      const holder = readLock(path);
      if (!holder) {
        // Unreadable: a holder killed between creating and writing it, or one writing it right now.
        const age = Date.now() - statSync(path).mtimeMs;
        if (age < 10_000) throw new RunFolderError(path, `${dir} is being locked by another run right now (${path}); try again in a few seconds, or use another --out.`);
        options.onWarning?.(`removed an unreadable lock file ${path} (${Math.round(age / 1000)} s old)`);
        rmSync(path, { force: true });
        continue;
      }
      if (holder.host === info.host && !pidAlive(holder.pid)) {
        options.onWarning?.(`took over the stale lock of ${dir}: process ${holder.pid} on ${holder.host} (started ${holder.started}) is no longer running`);
        rmSync(path, { force: true });
        continue;
      }
      const silent = Date.now() - statSync(path).mtimeMs;
      if (holder.host !== info.host && silent > LOCK_STALE_MS) {
        options.onWarning?.(`took over the stale lock of ${dir}: process ${holder.pid} on ${holder.host} (started ${holder.started}) has not refreshed it for ${Math.round(silent / 1000)} s`);
        rmSync(path, { force: true });
        continue;
      }
      throw new RunFolderError(
        path,
        `${dir} is in use by another run: process ${holder.pid} on ${holder.host}, started ${holder.started}${holder.command ? ` (${holder.command})` : ''}. ` +
          `Wait for it to finish or use another --out; if that process is gone, delete ${path}.`,
      );
    }
    try {
      const bytes = Buffer.from(JSON.stringify(info) + '\n');
      writeSync(fd, bytes, 0, bytes.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    let held = true;
    // The heartbeat: other hosts judge the lock by its modification time.
    const heartbeat = setInterval(() => {
      try {
        const now = new Date();
        utimesSync(path, now, now);
      } catch {
        // The folder went away: nothing to refresh.
      }
    }, LOCK_HEARTBEAT_MS);
    heartbeat.unref?.();
    const release = () => {
      if (!held) return;
      held = false;
      clearInterval(heartbeat);
      heldLocks.delete(release);
      const now = readLock(path);
      if (now && now.pid === info.pid && now.started === info.started) {
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      }
    };
    heldLocks.add(release);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => [...heldLocks].forEach((r) => r()));
    }
    return { path, info, release };
  }
  throw new RunFolderError(path, `cannot lock ${dir}: its lock file keeps changing (another run is starting there); use another --out.`);
}

/** Files and folders a run writes, in the order they are listed in messages. */
export const RUN_OUTPUTS = ['config.json', 'checkpoints', 'model', 'best-source-val', 'report.json', 'report.md', 'metrics.jsonl', 'skipped-images.txt'];

/** Entries of `dir` that a previous run left (its config, checkpoints, model, report, metrics). */
export function previousRunEntries(dir: string): string[] {
  return RUN_OUTPUTS.filter((n) => existsSync(join(dir, n)));
}

/**
 * Makes `dir` ready for a run: creates it (clear errors when it cannot be), takes its lock, and
 * refuses to start a new run over a previous one unless `resume` (continue it) or `overwrite`
 * (remove what that run wrote: config, checkpoints, model, best-source-val, reports, metrics,
 * curves and confusion matrices). Release the returned lock when the run ends.
 */
export function prepareRunFolder(dir: string, options: { resume?: boolean; overwrite?: boolean; onWarning?: (message: string) => void } = {}): RunLock {
  const target = resolve(dir);
  ensureWritableDir(target);
  const lock = acquireRunLock(target, options);
  try {
    if (!options.resume) {
      const previous = previousRunEntries(target);
      if (previous.length && !options.overwrite) {
        throw new RunFolderError(
          target,
          `${target} already holds a run (${previous.join(', ')}); continue it with --resume ${target}, replace it with --overwrite, or choose another --out.`,
        );
      }
      if (options.overwrite) {
        const figures = readdirSync(target).filter((n) => /^(curves|confusion)-.*\.(svg|png)$/.test(n));
        for (const n of [...previous, ...figures]) rmSync(join(target, n), { recursive: true, force: true });
        if (previous.length) options.onWarning?.(`--overwrite: removed the previous run's ${previous.join(', ')} from ${target}`);
      }
    }
  } catch (err) {
    lock.release();
    throw err;
  }
  return lock;
}
