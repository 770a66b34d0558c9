import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DfdError } from '@dfd/core';
import { createDefaultPlugins } from '../plugins.js';
import { loadTrainer, parseThreads, THREADS_HELP } from './train.js';

/** @dfd/grid imports @dfd/trainer: load it after the gradient hook, like loadTrainer. */
async function gridModule(): Promise<typeof import('@dfd/grid')> {
  const backends = await import('@dfd/backends');
  await backends.registerGradients();
  return import('@dfd/grid');
}

function whole(name: string, min = 1) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new DfdError('E_CONFIG', `${name}: expected a whole number >= ${min}, got '${v}'`);
    return n;
  };
}

/** Redraws one status line on a TTY; elsewhere prints it when it changes. */
function statusLine(): { show(line: string): void; done(): void } {
  let last = '';
  const tty = Boolean(process.stderr.isTTY);
  return {
    show(line) {
      if (line === last) return;
      last = line;
      process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
    },
    done() {
      if (tty && last) process.stderr.write('\n');
    },
  };
}

interface RunOpts {
  out: string;
  jobs?: number;
  queue?: string;
  queueName?: string;
  attempts: number;
  threads?: number;
  wait: boolean;
  maxCells?: number;
  redisTimeout: number;
}

const REDIS_TIMEOUT_HELP = 'give up (exit 1) when Redis has not answered for this many ms (default 60000)';

/**
 * The exit status of a grid: a DfdError (exit 1) when any cell failed or reported an invalid
 * report.json, after the report was written; a finished grid returns.
 */
function honestEnd(g: typeof import('@dfd/grid'), report: import('@dfd/grid').GridReport, rerun: string): void {
  const { failed, invalid, pending } = report.counts;
  if (!failed && !invalid) return;
  const parts = [failed ? `${failed} failed` : '', invalid ? `${invalid} with an invalid report.json (left out of the means)` : '', pending ? `${pending} not run` : ''].filter(Boolean);
  throw new g.GridIncompleteError(`grid ${report.dir} is incomplete: ${parts.join(', ')} of ${report.cells.length} cells (see the table above and report.md); ${rerun}`);
}

/** `dfd grid run|status|report|cell` and `dfd worker`. */
export function registerGrid(program: Command): void {
  const grid = program.command('grid').description('experiment grids: many runs (variants x seeds x ...), in process, as child processes or on BullMQ workers, with statistics over seeds');

  grid
    .command('run <gridFile>')
    .description('run every unfinished cell of a grid file (YAML/JSON: base, axes, eife); finished cells are skipped')
    .requiredOption('-o, --out <dir>', 'grid folder: one run folder per cell (with --queue: storage every worker sees, at the same path)')
    .option('-j, --jobs <n>', 'cells at once, each in a child process (default: one at a time in this process)', whole('--jobs'))
    .option('--queue <url>', 'enqueue the cells on BullMQ at this Redis URL (redis://HOST:PORT) for dfd worker processes')
    .option('--queue-name <name>', 'BullMQ queue name (default dfd-grid)')
    .option('--attempts <n>', 'attempts per cell before it is recorded as failed', whole('--attempts'), 2)
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .option('--no-wait', 'with --queue: return after enqueuing instead of following progress')
    .option('--redis-timeout <ms>', REDIS_TIMEOUT_HELP, whole('--redis-timeout', 100), 60_000)
    .option('--max-cells <n>', 'refuse a grid whose axes multiply to more cells than this (default 10000)', whole('--max-cells'))
    .action(async (file: string, opts: RunOpts) => {
      const g = await gridModule();
      const plan = g.loadGrid(file, resolve(opts.out), { maxCells: opts.maxCells });
      const backend = String(plan.cells[0]?.config.backend ?? plan.eifes[0]?.config.backend ?? 'auto');
      process.stderr.write(`dfd grid: ${plan.cells.length} cells${plan.eifes.length ? ` + ${plan.eifes.length} stage-1 jobs` : ''} in ${plan.dir}\n`);
      const line = statusLine();
      const show = (parallel?: number) => {
        const s = g.summariseProgress(g.gridProgress(plan.dir), parallel);
        line.show(`dfd grid: waiting ${s.waiting} · running ${s.running} · done ${s.done} · failed ${s.failed} · ETA ${g.formatDuration(s.etaSeconds)}`);
        return s;
      };
      if (opts.queue) {
        const target = { url: opts.queue, name: opts.queueName };
        const r = await g.enqueueGrid(plan, { ...target, attempts: opts.attempts, timeoutMs: opts.redisTimeout });
        process.stderr.write(`dfd grid: queued ${r.added} jobs on ${opts.queue} (${r.done} already done, ${r.alreadyQueued} already queued${r.held ? `, ${r.held} cells held until their stage-1 jobs finish` : ''}); start workers with: dfd worker --queue ${opts.queue}\n`);
        if (!opts.wait) return;
        process.stderr.write('dfd grid: following progress (Ctrl-C stops following; the jobs stay queued)\n');
        try {
          await g.followGrid(plan, { ...target, timeoutMs: opts.redisTimeout, onPoll: () => show(), rerun: `dfd grid run ${file} --out ${opts.out} --queue ${opts.queue}${opts.queueName ? ` --queue-name ${opts.queueName}` : ''}` });
        } finally {
          line.done();
        }
      } else {
        let stopping = false;
        let stopCurrent: ((reason: string) => void) | null = null;
        const children = new Set<ChildProcess>();
        const onSigint = () => {
          if (stopping) process.exit(130);
          stopping = true;
          process.stderr.write('\ndfd grid: SIGINT - finishing the running cells at a checkpoint; dfd grid run again continues (Ctrl-C again to abort)\n');
          stopCurrent?.('SIGINT');
          // --jobs: a terminal's Ctrl-C reaches the children too; a SIGINT sent to this process alone is passed on.
          for (const c of children) c.kill('SIGINT');
        };
        process.on('SIGINT', onSigint);
        const timer = setInterval(() => show(opts.jobs ?? 1), 2000);
        try {
          let execute: import('@dfd/grid').CellExecutor;
          if (opts.jobs) execute = g.childExecutor({ onSpawn: (_dir, child) => (children.add(child), child.on('exit', () => children.delete(child))) });
          else {
            await loadTrainer(backend, opts.threads);
            execute = (dir) => g.runCellInProcess(dir, { onStart: (stop) => (stopCurrent = stop), plugins: (c) => createDefaultPlugins(c) });
          }
          const sum = await g.runGridLocal(plan, {
            execute,
            jobs: opts.jobs ?? 1,
            attempts: opts.attempts,
            stopping: () => stopping,
            onWarning: (m) => process.stderr.write(`dfd grid: warning: ${m}\n`),
            onEvent: (e) => {
              if (e.type === 'start') return;
              line.done();
              const what = e.type === 'end' ? e.end : e.type === 'retry' ? `failed (attempt ${e.attempt}), retrying: ${e.error?.split('\n')[0]}` : `failed after ${e.attempt} attempts: ${e.error?.split('\n')[0]}`;
              process.stderr.write(`dfd grid: ${e.label}: ${what}\n`);
            },
          });
          line.done();
          process.stderr.write(`dfd grid: ${sum.completed} completed, ${sum.skipped} already done, ${sum.failed} failed, ${sum.stopped} stopped\n`);
          if (sum.stopped || stopping) process.stderr.write(`dfd grid: stopped; continue with: dfd grid run ${file} --out ${opts.out}\n`);
        } finally {
          clearInterval(timer);
          process.off('SIGINT', onSigint);
        }
      }
      const report = g.writeGridReport(plan.dir);
      process.stdout.write(`${g.reportMarkdown(report)}\n\ngrid folder: ${plan.dir} (report.md, report.json, report.svg)\n`);
      honestEnd(g, report, `dfd grid run ${file} --out ${opts.out} tries the failed cells again`);
    });

  grid
    .command('status [dir]')
    .description('waiting / running / done / failed cells, per-cell epoch and an ETA (from the grid folder; --queue adds the queue counts)')
    .option('--queue <url>', 'Redis URL of the grid queue')
    .option('--queue-name <name>', 'BullMQ queue name (default dfd-grid)')
    .option('--json', 'print JSON')
    .action(async (dir: string | undefined, opts: { queue?: string; queueName?: string; json?: boolean }) => {
      if (!dir && !opts.queue) throw new DfdError('E_CONFIG', 'dfd grid status needs a grid folder, --queue URL, or both.');
      const g = await gridModule();
      const cells = dir ? g.gridProgress(resolve(dir)) : [];
      const queue = opts.queue ? await g.queueCounts({ url: opts.queue, name: opts.queueName }) : undefined;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...(dir ? { summary: g.summariseProgress(cells), cells } : {}), ...(queue ? { queue } : {}) }, null, 2) + '\n');
        return;
      }
      if (queue) process.stdout.write(`queue ${opts.queueName ?? g.DEFAULT_QUEUE} at ${opts.queue}: ${Object.entries(queue).map(([k, v]) => `${k} ${v}`).join(' · ')}\n`);
      if (dir) process.stdout.write(`${g.formatStatus(cells, queue ? Math.max(1, queue.active ?? 0) : undefined)}\n`);
    });

  grid
    .command('report <dir>')
    .description('mean, std and 95 % CI over seeds per cell and target, paired differences between variants; writes report.md/.json/.svg into the grid folder')
    .option('--json', 'print the JSON report')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const g = await gridModule();
      const report = g.writeGridReport(resolve(dir));
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : `${g.reportMarkdown(report)}\n`);
      // Failed and pending cells are a grid's ordinary state while it runs; a report.json that
      // claims a finished run but is not one is not: exit 1, after the report was written.
      if (report.counts.invalid) {
        const bad = report.cells.filter((c) => c.status === 'invalid');
        throw new g.GridIncompleteError(`${bad.length} cell report${bad.length > 1 ? 's are' : ' is'} invalid and left out of the means:\n${bad.map((c) => `  ${c.error}`).join('\n')}\nDelete ${bad.length > 1 ? 'them' : 'it'} and run dfd grid run again to retrain ${bad.length > 1 ? 'those cells' : 'that cell'}.`);
      }
    });

  grid
    .command('cell <dir>')
    .description('run (or resume) one cell folder of a grid; what --jobs and dfd worker start for each cell')
    .option('--backend <name>', "tfjs backend (default: the cell config's)")
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .option('--parent-pipe', 'exit when stdin closes (the parent process died)')
    .action(async (dir: string, opts: { backend?: string; threads?: number; parentPipe?: boolean }) => {
      if (opts.parentPipe) {
        process.stdin.on('end', () => process.exit(137));
        process.stdin.resume();
      }
      try {
        await runCellCommand(dir, opts);
      } finally {
        // A resumed stdin keeps the process alive: let go of it however the run ended.
        if (opts.parentPipe) process.stdin.destroy();
      }
    });

  program
    .command('worker')
    .description('pull grid cells from a BullMQ queue and run them (each in a child process); start any number, on any machine that sees the grid folder')
    .requiredOption('--queue <url>', 'Redis URL, e.g. redis://127.0.0.1:6379')
    .option('--queue-name <name>', 'BullMQ queue name (default dfd-grid)')
    .option('--concurrency <n>', 'cells at once in this worker', whole('--concurrency'), 1)
    .option('--lock-duration <ms>', "job lock lifetime: a dead worker's job counts as stalled after it (BullMQ lockDuration)", whole('--lock-duration', 100), 30_000)
    .option('--stalled-interval <ms>', 'how often to look for stalled jobs (BullMQ stalledInterval)', whole('--stalled-interval', 100), 30_000)
    .option('--max-stalled-count <n>', 'stalls a job may have before it fails', whole('--max-stalled-count'), 2)
    .option('--until-empty', 'exit once the queue, after it had work, has nothing waiting, delayed or running')
    .option('--redis-timeout <ms>', REDIS_TIMEOUT_HELP, whole('--redis-timeout', 100), 60_000)
    .action(async (opts: { queue: string; queueName?: string; concurrency: number; lockDuration: number; stalledInterval: number; maxStalledCount: number; untilEmpty?: boolean; redisTimeout: number }) => {
      const g = await gridModule();
      // A wrong host, a refused database or a Redis that is down: exit 1 within --redis-timeout, not retry forever.
      await g.probeRedis(opts.queue, { timeoutMs: opts.redisTimeout });
      let fatal: Error | null = null;
      let onFatal: (err: Error) => void = () => {};
      const children = new Set<ChildProcess>();
      const byDir = new Map<string, ChildProcess>();
      const log = (l: string) => process.stdout.write(`dfd worker ${process.pid}: ${l}\n`);
      const w = g.startWorker({
        url: opts.queue,
        name: opts.queueName,
        concurrency: opts.concurrency,
        lockDuration: opts.lockDuration,
        stalledInterval: opts.stalledInterval,
        maxStalledCount: opts.maxStalledCount,
        redisTimeoutMs: opts.redisTimeout,
        onFatal: (err) => onFatal(err),
        log,
        // The job may already run on another worker: no checkpoint from this one any more.
        onLockLost: (dir) => byDir.get(dir)?.kill('SIGKILL'),
        execute: g.childExecutor({
          onSpawn: (dir, child) => {
            children.add(child);
            byDir.set(dir, child);
            log(`cell ${dir} in process ${child.pid}`);
            child.on('exit', () => {
              children.delete(child);
              if (byDir.get(dir) === child) byDir.delete(dir);
            });
          },
        }),
      });
      log(`waiting for jobs on ${opts.queue} (queue ${opts.queueName ?? g.DEFAULT_QUEUE}, concurrency ${opts.concurrency})`);
      let clean = true;
      await new Promise<void>((resolveDone) => {
        let closing = false;
        const closeThen = () => void w.close().then((ok) => ((clean = ok), resolveDone()));
        onFatal = (err) => {
          fatal = err;
          if (closing) return;
          closing = true;
          // Running cells checkpoint and stop (their jobs cannot be acknowledged without Redis).
          for (const c of children) c.kill('SIGINT');
          const wait = setInterval(() => {
            if (children.size) return;
            clearInterval(wait);
            closeThen();
          }, 200);
        };
        const shutdown = (signal: string) => {
          if (closing) process.exit(130);
          closing = true;
          if (!children.size) {
            log(`${signal}: closing`);
            closeThen();
            return;
          }
          // Running cells checkpoint and stop; their jobs are not acknowledged, so once their
          // locks expire another worker resumes them from that checkpoint.
          log(`${signal}: stopping ${children.size} running cells at a checkpoint; their jobs go to other workers after the lock duration`);
          for (const c of children) c.kill('SIGINT');
          const wait = setInterval(() => {
            if (children.size) return;
            clearInterval(wait);
            process.exit(0);
          }, 200);
        };
        process.on('SIGINT', () => shutdown('SIGINT'));
        process.on('SIGTERM', () => shutdown('SIGTERM'));
        if (opts.untilEmpty) {
          // Idle polls count only once the queue has had work: a worker started before the grid
          // is enqueued waits for it.
          let idle = 0;
          let seenWork = false;
          let polling = false;
          const poll = setInterval(() => {
            // One count at a time: with Redis away a count waits (the watchdog ends the worker).
            if (polling || closing) return;
            polling = true;
            void g.queueCounts({ url: opts.queue, name: opts.queueName }).finally(() => (polling = false)).then((c) => {
              const busy = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c['waiting-children'] ?? 0);
              seenWork ||= busy > 0 || (c.completed ?? 0) + (c.failed ?? 0) > 0;
              idle = busy === 0 && seenWork ? idle + 1 : 0;
              if (idle >= 2 && !closing) {
                clearInterval(poll);
                closing = true;
                log('queue empty: closing');
                closeThen();
              }
            });
          }, 1000);
          onFatal = ((inner) => (err: Error) => (clearInterval(poll), inner(err)))(onFatal);
        }
      });
      // A connection BullMQ could not close (Redis away) must not keep the process alive.
      setTimeout(() => process.exit(process.exitCode ?? 1), 3000).unref();
      if (fatal) throw fatal;
      if (!clean) throw new DfdError('E_QUEUE_UNREACHABLE', `the worker could not close cleanly within 10 s (Redis at ${opts.queue} did not answer); its running jobs, if any, go to other workers after the lock duration.`);
    });
}

/** `dfd grid cell DIR`: run or resume one cell in this process; exit STOPPED_EXIT when stopped at a checkpoint. */
async function runCellCommand(dir: string, opts: { backend?: string; threads?: number }): Promise<void> {
  let spec: { config?: { backend?: string } };
  try {
    spec = JSON.parse(readFileSync(join(dir, 'grid-cell.json'), 'utf8')) as typeof spec;
  } catch (err) {
    throw new DfdError('E_CONFIG', `${join(dir, 'grid-cell.json')}: ${(err as Error).message}; pass a cell folder written by dfd grid run.`);
  }
  await loadTrainer(opts.backend ?? spec.config?.backend ?? 'auto', opts.threads);
  const g = await import('@dfd/grid');
  let stop: ((reason: string) => void) | null = null;
  const onSignal = (signal: string) => () => {
    process.stderr.write(`dfd grid cell: ${signal} - finishing the step and writing a checkpoint\n`);
    stop?.(signal);
  };
  const onInt = onSignal('SIGINT');
  const onTerm = onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const end = await g.runCellInProcess(dir, { onStart: (s) => (stop = s), plugins: (c) => createDefaultPlugins(c) });
    process.stderr.write(`dfd grid cell: ${dir}: ${end}\n`);
    if (end === 'stopped') process.exit(g.STOPPED_EXIT);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
