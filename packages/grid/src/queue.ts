import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FlowProducer, Job, Queue, Worker, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ConfigError, DfdError } from '@dfd/core';
import { LOCK_FILE } from '@dfd/trainer/node';
import type { CellExecutor, CellEnd } from './run.js';
import type { GridPlan } from './spec.js';
import { clearFailed, isDone, prepareGrid, readFailed, writeFailed } from './store.js';

/** Default BullMQ queue name of dfd grids. */
export const DEFAULT_QUEUE = 'dfd-grid';

/** Where the queue is: a Redis URL and the BullMQ queue name. */
export interface QueueTarget {
  /** `redis://HOST:PORT[/DB]`. */
  url: string;
  /** BullMQ queue name (default {@link DEFAULT_QUEUE}). */
  name?: string;
}

/** What a job carries: a cell folder (on storage every worker sees), or the cells a finished stage 1 releases. */
export interface GridJobData {
  kind: 'dfd' | 'eife' | 'release';
  dir: string;
  label: string;
  /** eife: cell folders that need this extractor (they fail with it). */
  dependents?: string[];
  /** release: cell jobs to add once every stage-1 job finished. */
  release?: Array<{ dir: string; label: string; jobId: string }>;
  /** release: options of the released jobs. */
  jobOptions?: JobsOptions;
}

/** Redis could not be reached (or refused the URL's database) within a bounded time: exit 1 with the cause. */
export class QueueUnreachableError extends DfdError {
  constructor(message: string) {
    super('E_QUEUE_UNREACHABLE', message);
  }
}

/** The queue no longer holds the jobs of a grid's unfinished cells (Redis restarted empty, or was flushed). */
export class GridQueueLostError extends DfdError {
  constructor(message: string) {
    super('E_GRID_QUEUE_LOST', message);
  }
}

/** How long Redis may be unreachable before a worker or a following `dfd grid run` gives up (ms). */
export const DEFAULT_REDIS_TIMEOUT_MS = 60_000;

/** Reconnection delays: 200 ms doubling to 5 s (not ioredis' 50 ms steps, which log several failures a second). */
function reconnectDelay(times: number): number {
  return Math.min(200 * 2 ** Math.min(times - 1, 5), 5000);
}

/** Open a Redis connection for BullMQ (`maxRetriesPerRequest: null`, as workers need); rejects a URL that is not redis://. */
export function connect(url: string): Redis {
  if (!/^rediss?:\/\//.test(url)) throw new ConfigError('--queue', `expected a Redis URL like redis://127.0.0.1:6379, got '${url}'`);
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false, retryStrategy: reconnectDelay });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

/**
 * Check that Redis answers at `url` within `timeoutMs` (retrying with backoff meanwhile) and
 * that it accepted the URL's database (`redis://HOST:PORT/DB`; ioredis goes on with database 0
 * when SELECT fails). A {@link QueueUnreachableError} naming the URL and the last error otherwise.
 */
export async function probeRedis(url: string, options: { timeoutMs?: number } = {}): Promise<void> {
  if (!/^rediss?:\/\//.test(url)) throw new ConfigError('--queue', `expected a Redis URL like redis://127.0.0.1:6379, got '${url}'`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
  const started = Date.now();
  let last = '';
  let refused = '';
  const r = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: Math.max(500, Math.min(5000, timeoutMs)),
    retryStrategy: (times) => (Date.now() - started >= timeoutMs ? null : reconnectDelay(times)),
  });
  r.on('error', (err: Error & { code?: string }) => {
    last = err.message;
    // A reply error while connecting (SELECT, AUTH): Redis answered, and said no.
    if (err.name === 'ReplyError') refused = err.message;
  });
  try {
    const answered = await Promise.race([
      r.connect().then(
        () => r.ping(),
        () => r.ping(),
      ),
      sleep(timeoutMs).then(() => null),
    ]).catch((err: Error) => {
      last = err.message;
      return null;
    });
    if (answered === null) throw new QueueUnreachableError(`Redis at ${url} did not answer within ${Math.round(timeoutMs / 1000)} s (retried with backoff): ${last || 'no reply'}. Is redis-server running there, and is the host right?`);
    if (refused) throw new QueueUnreachableError(`Redis at ${url} refused the connection's setup: ${refused}${/DB index/.test(refused) ? ' (the /DB part of the URL names a database this server does not have)' : ''}.`);
  } finally {
    r.disconnect();
  }
}

/** Job ids: the kind, the grid folder and the cell hash (the same cell of the same grid is never queued twice). */
function jobId(kind: string, gridDir: string, hash: string): string {
  return `${kind}-${createHash('sha256').update(gridDir).digest('hex').slice(0, 8)}-${hash}`;
}

/** Whether a job id is free to add: absent, or finished/failed (then removed so that it can run again). */
async function freeId(queue: Queue, id: string): Promise<boolean> {
  const job = await Job.fromId(queue, id);
  if (!job) return true;
  const state = await job.getState();
  if (state === 'completed' || state === 'failed' || state === 'unknown') {
    await job.remove({ removeChildren: true });
    return true;
  }
  return false;
}

/**
 * The run-folder lock of a cell whose job BullMQ handed to this worker after a stall, when it was
 * taken on another machine: that machine's worker stopped renewing the job, so its run is gone
 * (the trainer can only tell a dead holder on its own host). Returns the host taken over from.
 */
export function takeOverForeignLock(dir: string): string | null {
  const path = join(dir, LOCK_FILE);
  let holder: { host?: string; pid?: number };
  try {
    holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
  } catch {
    return null;
  }
  if (!holder.host || holder.host === hostname()) return null;
  rmSync(path, { force: true });
  return `${holder.host} (pid ${holder.pid})`;
}

/** What {@link enqueueGrid} added. */
export interface EnqueueSummary {
  added: number;
  alreadyQueued: number;
  done: number;
  /** Cells waiting on stage-1 jobs (a BullMQ flow: the stage-1 jobs are the children of a release job). */
  held: number;
}

/**
 * Put a grid's unfinished cells on the queue. Cells without stage-1 needs are added at once.
 * Stage-1 EIFE jobs go in as one BullMQ flow: they are the children of a `release` job, which
 * BullMQ runs only after all of them completed, and which then adds the cells that need them (a
 * BullMQ job has one parent; one extractor serves many cells). A stage-1 job that runs out of
 * attempts fails its parent (`failParentOnFailure`) and records the error in its dependants.
 * Job ids derive from grid folder + cell hash: enqueuing the same grid again adds only what is
 * neither done nor already queued.
 */
export async function enqueueGrid(plan: GridPlan, target: QueueTarget & { attempts?: number; backoffMs?: number; timeoutMs?: number }): Promise<EnqueueSummary> {
  await probeRedis(target.url, { timeoutMs: target.timeoutMs });
  prepareGrid(plan);
  const name = target.name ?? DEFAULT_QUEUE;
  const connection = connect(target.url);
  const queue = new Queue<GridJobData>(name, { connection });
  const flows = new FlowProducer({ connection });
  const jobOptions: JobsOptions = { attempts: Math.max(1, target.attempts ?? 2), backoff: { type: 'fixed', delay: target.backoffMs ?? 1000 }, removeOnComplete: false, removeOnFail: false };
  const summary: EnqueueSummary = { added: 0, alreadyQueued: 0, done: 0, held: 0 };
  try {
    const pendingEifes = plan.eifes.filter((e) => !isDone(e.dir));
    for (const c of [...plan.eifes, ...plan.cells]) {
      if (isDone(c.dir)) summary.done++;
      else clearFailed(c.dir);
    }
    const held = plan.cells.filter((c) => !isDone(c.dir) && c.needs.some((h) => pendingEifes.some((e) => e.hash === h)));
    for (const c of plan.cells) {
      if (isDone(c.dir) || held.includes(c)) continue;
      const id = jobId('cell', plan.dir, c.hash);
      if (!(await freeId(queue, id))) {
        summary.alreadyQueued++;
        continue;
      }
      await queue.add('cell', { kind: 'dfd', dir: c.dir, label: c.label }, { ...jobOptions, jobId: id });
      summary.added++;
    }
    if (held.length) {
      const releaseId = jobId('release', plan.dir, createHash('sha256').update(held.map((c) => c.hash).sort().join(',')).digest('hex').slice(0, 12));
      if (await freeId(queue, releaseId)) {
        for (const e of pendingEifes) await freeId(queue, jobId('eife', plan.dir, e.hash));
        await flows.add({
          name: 'release',
          queueName: name,
          data: { kind: 'release', dir: plan.dir, label: `release ${held.length} cells`, release: held.map((c) => ({ dir: c.dir, label: c.label, jobId: jobId('cell', plan.dir, c.hash) })), jobOptions } satisfies GridJobData,
          opts: { jobId: releaseId, removeOnComplete: false, removeOnFail: false },
          children: pendingEifes.map((e) => ({
            name: 'eife',
            queueName: name,
            data: { kind: 'eife', dir: e.dir, label: e.label, dependents: held.filter((c) => c.needs.includes(e.hash)).map((c) => c.dir) } satisfies GridJobData,
            opts: { ...jobOptions, jobId: jobId('eife', plan.dir, e.hash), failParentOnFailure: true },
          })),
        });
        summary.added += pendingEifes.length;
        summary.held += held.length;
      } else summary.alreadyQueued += held.length;
    }
    return summary;
  } finally {
    await flows.close();
    await queue.close();
    connection.disconnect();
  }
}

/** Options of {@link startWorker}. */
export interface WorkerOptions extends QueueTarget {
  /** Runs one cell (a worker uses {@link import('./run.js').childExecutor}: the worker's event loop stays free to renew its job locks). */
  execute: CellExecutor;
  /** Jobs at once (default 1). */
  concurrency?: number;
  /** How long a job's lock lives without renewal (BullMQ lockDuration, default 30000 ms); a killed worker's job is stalled after it. */
  lockDuration?: number;
  /** How often stalled jobs are looked for (BullMQ stalledInterval, default 30000 ms). */
  stalledInterval?: number;
  /** How many times a job may stall before it fails (BullMQ maxStalledCount, default 2). */
  maxStalledCount?: number;
  /** One line per job start/end/failure. */
  log?: (line: string) => void;
  /**
   * Called with a cell folder when BullMQ could not renew its job's lock (the job was declared
   * stalled and may already run elsewhere): stop the cell at once (the CLI kills its child).
   */
  onLockLost?: (dir: string) => void;
  /** How long Redis may be unreachable before {@link onFatal} is called (default {@link DEFAULT_REDIS_TIMEOUT_MS}). */
  redisTimeoutMs?: number;
  /** Told once when Redis has been unreachable for `redisTimeoutMs` (the CLI closes the worker and exits 1). */
  onFatal?: (err: QueueUnreachableError) => void;
}

/** A running worker. */
export interface GridWorker {
  worker: Worker<GridJobData>;
  /** Close the worker, bounded by `timeoutMs` (default 10 s): past it the connections are dropped. Resolves false when it was not clean. */
  close(timeoutMs?: number): Promise<boolean>;
}

/**
 * Pull grid jobs from the queue and run them. A job whose cell folder already holds a finished
 * run completes at once (a job re-delivered after a stall never trains a finished cell twice); a
 * cell with a checkpoint resumes from it. On its last attempt a failing cell gets failed.json
 * with the error, and a failing stage-1 job writes it into every cell that needed it.
 */
export function startWorker(o: WorkerOptions): GridWorker {
  const name = o.name ?? DEFAULT_QUEUE;
  const connection = connect(o.url);
  const queue = new Queue<GridJobData>(name, { connection });
  const log = o.log ?? (() => {});
  const running = new Map<string, string>();
  const worker = new Worker<GridJobData>(
    name,
    async (job): Promise<CellEnd | 'released'> => {
      const d = job.data;
      if (d.kind === 'release') {
        for (const c of d.release ?? []) {
          if (isDone(c.dir) || !(await freeId(queue, c.jobId))) continue;
          await queue.add('cell', { kind: 'dfd', dir: c.dir, label: c.label }, { ...d.jobOptions, jobId: c.jobId });
        }
        log(`job ${job.id} released ${d.release?.length ?? 0} cells`);
        return 'released';
      }
      if (isDone(d.dir)) {
        log(`job ${job.id} skipped ${d.dir} (already done)`);
        return 'skipped';
      }
      log(`job ${job.id} start ${d.dir} attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1}`);
      const foreign = takeOverForeignLock(d.dir);
      if (foreign) log(`job ${job.id} took over the run-folder lock of ${foreign}: its worker stopped renewing the job`);
      running.set(job.id!, d.dir);
      try {
        const end = await o.execute(d.dir);
        log(`job ${job.id} ${end} ${d.dir}`);
        // A stopped cell (worker shutting down) is not finished: never acknowledge it; its lock
        // expires and another worker resumes it from the checkpoint it just wrote.
        if (end === 'stopped') await new Promise(() => {});
        return end;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const attempt = job.attemptsMade + 1;
        if (attempt >= (job.opts.attempts ?? 1)) {
          writeFailed(d.dir, message, attempt);
          for (const dep of d.dependents ?? []) writeFailed(dep, `stage-1 extractor ${d.label} failed: ${message}`, 0);
        }
        log(`job ${job.id} failed ${d.dir} attempt ${attempt}/${job.opts.attempts ?? 1}: ${message.split('\n')[0]}`);
        throw err;
      } finally {
        running.delete(job.id!);
      }
    },
    {
      connection,
      concurrency: o.concurrency ?? 1,
      lockDuration: o.lockDuration ?? 30_000,
      stalledInterval: o.stalledInterval ?? 30_000,
      maxStalledCount: o.maxStalledCount ?? 2,
    },
  );
  // One line per distinct error, repeated at most every 10 s with a count (not several a second while Redis is away).
  let lastError = '';
  let lastErrorAt = 0;
  let repeats = 0;
  const logError = (err: Error) => {
    const now = Date.now();
    if (err.message === lastError && now - lastErrorAt < 10_000) {
      repeats++;
      return;
    }
    log(`worker error: ${err.message}${repeats ? ` (and ${repeats} more like the last one)` : ''}`);
    lastError = err.message;
    lastErrorAt = now;
    repeats = 0;
  };
  worker.on('error', logError);
  connection.on('error', logError);
  // The watchdog: a PING every 2 s; Redis silent for redisTimeoutMs is fatal (a worker otherwise retries forever).
  const timeoutMs = o.redisTimeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
  let lastOk = Date.now();
  let pinging = false;
  let fatal = false;
  const watchdog = setInterval(() => {
    if (fatal) return;
    if (Date.now() - lastOk > timeoutMs) {
      fatal = true;
      clearInterval(watchdog);
      const err = new QueueUnreachableError(`Redis at ${o.url} has not answered for ${Math.round((Date.now() - lastOk) / 1000)} s${lastError ? ` (last error: ${lastError})` : ''}; the worker gives up. Running cells keep their checkpoints: start the worker again once Redis is back, and run dfd grid run --queue again if Redis lost the jobs.`);
      log(err.message);
      o.onFatal?.(err);
      return;
    }
    if (pinging) return;
    pinging = true;
    void Promise.race([connection.ping(), sleep(3000).then(() => Promise.reject(new Error('PING timed out')))])
      .then(() => (lastOk = Date.now()))
      .catch(() => {})
      .finally(() => (pinging = false));
  }, 2000);
  worker.on('lockRenewalFailed', (ids) => {
    for (const id of ids) {
      const dir = running.get(id);
      if (!dir) continue;
      log(`job ${id} lost its lock (declared stalled; it may run elsewhere now): stopping ${dir}`);
      o.onLockLost?.(dir);
    }
  });
  return {
    worker,
    async close(closeTimeoutMs = 10_000) {
      clearInterval(watchdog);
      const clean = await Promise.race([
        (async () => {
          await worker.close();
          await queue.close();
          return true;
        })().catch(() => false),
        sleep(closeTimeoutMs).then(() => false),
      ]);
      if (!clean) void worker.close(true).catch(() => {});
      connection.disconnect();
      return clean;
    },
  };
}

/**
 * The unfinished cells (and stage-1 jobs) of a grid that have no job on the queue: neither done
 * nor failed in their folder, no job under their id (a cell held for its stage-1 jobs counts as
 * queued while one of those is), and no run.lock (a worker still running an orphaned job). A
 * Redis that restarted empty, or a flushed queue, leaves every unfinished cell here.
 */
export async function missingJobs(plan: GridPlan, queue: Queue): Promise<string[]> {
  const open = (c: { dir: string }) => !isDone(c.dir) && !readFailed(c.dir);
  const has = async (kind: string, hash: string) => Boolean(await Job.fromId(queue, jobId(kind, plan.dir, hash)));
  const running = (dir: string) => {
    try {
      readFileSync(join(dir, LOCK_FILE));
      return true;
    } catch {
      return false;
    }
  };
  const missing: string[] = [];
  for (const e of plan.eifes) if (open(e) && !running(e.dir) && !(await has('eife', e.hash))) missing.push(e.label);
  for (const c of plan.cells) {
    if (!open(c) || running(c.dir) || (await has('cell', c.hash))) continue;
    if (c.needs.some((h) => missing.includes(plan.eifes.find((e) => e.hash === h)!.label))) {
      missing.push(c.label);
      continue;
    }
    const held = c.needs.some((h) => !isDone(plan.eifes.find((e) => e.hash === h)!.dir));
    if (!held) missing.push(c.label);
  }
  return missing;
}

/**
 * Follow a queued grid until its folder shows no waiting or running cell, calling `onPoll` every
 * `intervalMs`. Bounded: Redis silent for `timeoutMs` is a {@link QueueUnreachableError}; the
 * queue holding no job for some unfinished cells on two checks in a row (Redis restarted empty,
 * a flushed queue) is a {@link GridQueueLostError} naming them and the command that enqueues them again.
 */
export async function followGrid(plan: GridPlan, target: QueueTarget & { timeoutMs?: number; intervalMs?: number; rerun: string; onPoll: () => { waiting: number; running: number } }): Promise<void> {
  const timeoutMs = target.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
  const started = Date.now();
  let lastOk = Date.now();
  const connection = new Redis(target.url, { maxRetriesPerRequest: 1, retryStrategy: reconnectDelay, connectTimeout: 5000 });
  let lastError = '';
  connection.on('error', (err: Error) => (lastError = err.message));
  const queue = new Queue<GridJobData>(target.name ?? DEFAULT_QUEUE, { connection });
  let lostBefore = 0;
  try {
    for (;;) {
      const s = target.onPoll();
      if (s.waiting + s.running === 0) return;
      try {
        const missing = await Promise.race([missingJobs(plan, queue), sleep(10_000).then(() => Promise.reject(new Error('no reply within 10 s')))]);
        lastOk = Date.now();
        lostBefore = missing.length ? lostBefore + 1 : 0;
        if (lostBefore >= 2) {
          throw new GridQueueLostError(
            `the queue ${target.name ?? DEFAULT_QUEUE} at ${target.url} holds no job for ${missing.length} unfinished cell${missing.length > 1 ? 's' : ''} of ${plan.dir} ` +
              `(${missing.slice(0, 3).join('; ')}${missing.length > 3 ? '; ...' : ''}): Redis restarted empty or the queue was flushed, and nothing would ever run them. ` +
              `Enqueue them again with: ${target.rerun} (finished cells are kept and skipped).`,
          );
        }
      } catch (err) {
        if (err instanceof GridQueueLostError) throw err;
        lastError = (err as Error).message;
        if (Date.now() - lastOk > timeoutMs) throw new QueueUnreachableError(`Redis at ${target.url} has not answered for ${Math.round((Date.now() - lastOk) / 1000)} s (last error: ${lastError}); stopped following ${plan.dir} after ${Math.round((Date.now() - started) / 1000)} s. The cells stay queued; dfd grid status ${plan.dir} shows their progress.`);
      }
      await sleep(target.intervalMs ?? 2000);
    }
  } finally {
    await Promise.race([queue.close().catch(() => {}), sleep(2000)]);
    connection.disconnect();
  }
}

/** Job counts of the queue by state. */
export async function queueCounts(target: QueueTarget): Promise<Record<string, number>> {
  const connection = connect(target.url);
  const queue = new Queue(target.name ?? DEFAULT_QUEUE, { connection });
  try {
    return await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'completed', 'failed', 'paused');
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
