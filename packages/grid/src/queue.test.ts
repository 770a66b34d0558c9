import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { connect, enqueueGrid, queueCounts, takeOverForeignLock } from './queue.js';
import { gridReport, type GridReport } from './report.js';
import { schedulerPlugins } from '@dfd/plugin-schedulers';
import { runCellInProcess, runGridLocal } from './run.js';
import { expandGrid } from './spec.js';
import { isDone, readFailed, readMetrics } from './store.js';
import { haveRedisServer, startRedis } from './test-utils/redis.js';

const root = resolve(import.meta.dirname, '../../..');
const CLI = [process.execPath, '--conditions=@dfd/source', '--import', 'tsx', join(root, 'packages/cli/src/bin.ts')];

/** 1 stage-1 job + 6 cells (att and att+eifp x 3 seeds), seconds each on the CPU backend. */
const GRID = {
  base: {
    source: 'synthetic:studio?train=64&test=0&size=16',
    targets: { wild: 'synthetic:wild?train=0&test=32&size=16', sketch: 'synthetic:sketch?train=0&test=32&size=16' },
    epochs: 2,
    model: { width: 0.0625, inputSize: 16 },
    data: { batchSize: 16, augment: false },
    // A high constant rate: 8 steps move the cells apart (the comparison below is not between chance-level constants).
    optimizer: { lr: { heads: 0.01 } },
    schedule: { cosine: false },
    backend: 'cpu',
  },
  axes: { variant: ['att', 'att+eifp'], seed: [0, 1, 2] },
  eife: [{ dataset: 'synthetic:studio?train=64&test=0&size=16', factors: ['identity'], model: { embedDim: 8 } }],
};

/** The numbers of a report: per group and per difference, every summary; per cell, the accuracies. */
function numbers(r: GridReport) {
  return {
    groups: r.groups.map((g) => ({ method: g.method, targets: g.targets, mean: g.mean, perSeed: g.perSeed })),
    differences: r.differences.map((d) => ({ label: d.label, targets: d.targets, mean: d.mean })),
    cells: r.cells.map((c) => ({ hash: c.hash, status: c.status, accuracy: c.accuracy, mean: c.mean })),
  };
}

interface WorkerProc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

function startWorker(url: string, queue: string, extra: string[] = []): WorkerProc {
  const child = spawn(CLI[0]!, [...CLI.slice(1), 'worker', '--queue', url, '--queue-name', queue, '--lock-duration', '2000', '--stalled-interval', '1000', ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const w: WorkerProc = { child, out: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  child.stdout!.on('data', (d) => (w.out += String(d)));
  child.stderr!.on('data', (d) => (w.out += String(d)));
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run the dfd CLI to its end: exit code, stdout, stderr. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(CLI[0]!, [...CLI.slice(1), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('exit', (code) => resolveRun({ code, stdout, stderr }));
  });
}

/** The queue's counts once no job is active (a cell's report is on disk a moment before its worker acknowledges the job). */
async function settledCounts(url: string, name: string): Promise<Record<string, number>> {
  for (let i = 0; ; i++) {
    const c = await queueCounts({ url, name });
    if (c.active === 0 || i >= 100) return c;
    await sleep(200);
  }
}

describe.skipIf(!haveRedisServer())('dfd grid on BullMQ + Redis (skipped: redis-server is not on PATH; apt-get install redis-server)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const workers: WorkerProc[] = [];

  beforeAll(async () => {
    await tf.setBackend('cpu');
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await redis?.stop();
  });

  it('2 workers, one SIGKILLed mid-cell: every cell completes once, the killed one resumes from its checkpoint, numbers equal the in-process runner; a failing cell is retried then failed', { timeout: 900_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-queue-'));
    const plan = expandGrid(GRID, dir);
    expect(plan.cells).toHaveLength(6);
    const queue = `dfd-grid-test-${process.pid}`;
    const enq = await enqueueGrid(plan, { url: redis.url, name: queue, attempts: 2, backoffMs: 200 });
    // 3 att cells at once; the stage-1 job as the child of a flow that then releases the 3 att+eifp cells.
    expect(enq).toEqual({ added: 4, alreadyQueued: 0, done: 0, held: 3 });
    // Enqueuing again adds nothing.
    expect(await enqueueGrid(plan, { url: redis.url, name: queue, attempts: 2 })).toMatchObject({ added: 0, alreadyQueued: 3 + 3 });
    // A second grid on the same queue whose only cell cannot find its dataset.
    const badDir = mkdtempSync(join(tmpdir(), 'dfd-grid-bad-'));
    const bad = expandGrid({ base: { ...GRID.base, source: 'folder:/nonexistent/dfd-grid-test' }, axes: { variant: ['att'] } }, badDir);
    await enqueueGrid(bad, { url: redis.url, name: queue, attempts: 2, backoffMs: 200 });

    workers.push(startWorker(redis.url, queue), startWorker(redis.url, queue));
    // Kill the worker of the first cell seen in its second epoch (after the epoch-1 checkpoint).
    let killed: { dir: string; worker: WorkerProc } | null = null;
    const deadline = Date.now() + 800_000;
    while (Date.now() < deadline) {
      if (!killed) {
        for (const c of plan.cells) {
          const ev = readMetrics(c.dir);
          // epochEnd and checkpoint count completed epochs (1-based).
          const inSecondEpoch = ev.some((e) => e.type === 'checkpoint' && e.epoch === 1) && !ev.some((e) => e.type === 'epochEnd' && e.epoch === 2);
          const afterCheckpoint = ev.map((e) => e.type).lastIndexOf('batchEnd') > ev.findIndex((e) => e.type === 'epochEnd');
          const owner = workers.find((w) => w.out.includes(`cell ${c.dir} in process`));
          if (inSecondEpoch && afterCheckpoint && owner && !isDone(c.dir)) {
            owner.child.kill('SIGKILL');
            killed = { dir: c.dir, worker: owner };
            break;
          }
        }
      }
      const all = [...plan.eifes, ...plan.cells, ...bad.cells];
      if (all.every((c) => isDone(c.dir) || readFailed(c.dir))) break;
      await sleep(killed ? 500 : 50);
    }
    const logs = workers.map((w) => w.out).join('\n');
    expect(killed, logs).not.toBeNull();
    expect(await killed!.worker.exited).toBeNull();

    // Every cell completed exactly once: one runEnd 'completed' per folder.
    for (const c of [...plan.eifes, ...plan.cells]) {
      expect(isDone(c.dir), `${c.label}\n${logs}`).toBe(true);
      const ends = readMetrics(c.dir).filter((e) => e.type === 'runEnd');
      expect(ends.map((e) => e.status), c.label).toEqual(['completed']);
    }
    // The killed cell started twice; the second start resumed at epoch 1 from the checkpoint and
    // trained only the epoch that was missing.
    const ev = readMetrics(killed!.dir);
    const starts = ev.map((e, i) => ({ e, i })).filter(({ e }) => e.type === 'runStart');
    expect(starts).toHaveLength(2);
    expect(starts[0]!.e.startEpoch).toBe(0);
    expect(starts[1]!.e.startEpoch).toBeGreaterThanOrEqual(1);
    const stepsAfterResume = ev.slice(starts[1]!.i).filter((e) => e.type === 'batchEnd').length;
    const stepsPerEpoch = (starts[0]!.e as unknown as { stepsPerEpoch: number }).stepsPerEpoch;
    expect(stepsAfterResume).toBe(stepsPerEpoch * (2 - starts[1]!.e.startEpoch!));
    const cellsOfKilled = workers.filter((w) => w !== killed!.worker).map((w) => w.out);
    expect(cellsOfKilled.join('\n')).toContain(`cell ${killed!.dir} in process`);

    // The failing cell: 2 attempts, then failed with its error; the rest went on.
    const failed = readFailed(bad.cells[0]!.dir);
    expect(failed, logs).not.toBeNull();
    expect(failed!.attempts).toBe(2);
    expect(failed!.error).toMatch(/nonexistent\/dfd-grid-test/);
    expect(logs.match(new RegExp(`failed ${bad.cells[0]!.dir} attempt`, 'g'))).toHaveLength(2);
    const badReport = gridReport(badDir);
    expect(badReport.counts).toEqual({ done: 0, failed: 1, pending: 0, invalid: 0 });
    expect(badReport.cells[0]!.error).toMatch(/nonexistent\/dfd-grid-test/);

    // In the queue: each job completed once (3 + 3 cells, the stage-1 job, the release job), the bad one failed.
    expect(await settledCounts(redis.url, queue)).toMatchObject({ completed: 8, failed: 1, active: 0, waiting: 0, delayed: 0, 'waiting-children': 0 });

    const survivor = workers.find((w) => w !== killed!.worker)!;
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);

    // The same grid in this process, one cell after the other: the same numbers.
    const localDir = mkdtempSync(join(tmpdir(), 'dfd-grid-local-'));
    const local = expandGrid(GRID, localDir);
    // The scheduler plugins the CLI's cells get (createDefaultPlugins); console and the metrics log change no number.
    const sum = await runGridLocal(local, { execute: (d) => runCellInProcess(d, { plugins: (c) => schedulerPlugins(c.schedule) }) });
    expect(sum).toEqual({ completed: 7, skipped: 0, failed: 0, stopped: 0 });
    const viaCli = await new Promise<string>((resolveOut, reject) => {
      const p = spawn(CLI[0]!, [...CLI.slice(1), 'grid', 'report', dir, '--json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += String(d)));
      p.stderr.on('data', (d) => (err += String(d)));
      p.on('exit', (code) => (code === 0 ? resolveOut(out) : reject(new Error(err))));
    });
    const queued = JSON.parse(viaCli) as GridReport;
    const inProcess = gridReport(localDir);
    expect(queued.counts).toEqual({ done: 6, failed: 0, pending: 0, invalid: 0 });
    expect(numbers(queued)).toEqual(numbers(inProcess));
    expect(new Set(queued.cells.map((c) => c.mean)).size).toBeGreaterThan(2);
    expect(queued.groups.map((g) => g.mean.n)).toEqual([3, 3]);
    expect(queued.differences.map((d) => d.label)).toEqual(['att+eifp − att']);
    expect(existsSync(join(dir, 'report.svg'))).toBe(true);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('| att+eifp | ');
  });

  it('SIGTERM of a worker: its cell stops at a checkpoint, the job is not acknowledged, and another worker resumes it', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-term-'));
    const plan = expandGrid({ base: { ...GRID.base, epochs: 3 }, axes: { variant: ['att'] } }, dir);
    const queue = `dfd-grid-term-${process.pid}`;
    await enqueueGrid(plan, { url: redis.url, name: queue, attempts: 1 });
    const cell = plan.cells[0]!;
    const first = startWorker(redis.url, queue);
    workers.push(first);
    const deadline = Date.now() + 500_000;
    while (Date.now() < deadline && !readMetrics(cell.dir).some((e) => e.type === 'checkpoint' && e.epoch === 1)) await sleep(50);
    first.child.kill('SIGTERM');
    expect(await first.exited, first.out).toBe(0);
    expect(first.out).toContain('SIGTERM: stopping 1 running cells at a checkpoint');
    expect(readMetrics(cell.dir).filter((e) => e.type === 'runEnd').map((e) => e.status)).toEqual(['stopped']);
    expect(isDone(cell.dir)).toBe(false);
    const second = startWorker(redis.url, queue);
    workers.push(second);
    while (Date.now() < deadline && !isDone(cell.dir)) await sleep(200);
    const ev = readMetrics(cell.dir);
    expect(ev.filter((e) => e.type === 'runEnd').map((e) => e.status), second.out).toEqual(['stopped', 'completed']);
    const starts = ev.filter((e) => e.type === 'runStart').map((e) => e.startEpoch!);
    expect(starts[0]).toBe(0);
    expect(starts[1]).toBeGreaterThanOrEqual(1);
    expect(await settledCounts(redis.url, queue)).toMatchObject({ completed: 1, failed: 0, active: 0 });
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('a worker whose job lock was taken away kills its cell at once; the job stalls and resumes from the checkpoint', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-lost-'));
    const plan = expandGrid({ base: { ...GRID.base, epochs: 3 }, axes: { variant: ['base'] } }, dir);
    const queue = `dfd-grid-lost-${process.pid}`;
    await enqueueGrid(plan, { url: redis.url, name: queue, attempts: 1 });
    const cell = plan.cells[0]!;
    const w = startWorker(redis.url, queue);
    workers.push(w);
    const deadline = Date.now() + 500_000;
    while (Date.now() < deadline && !readMetrics(cell.dir).some((e) => e.type === 'checkpoint' && e.epoch === 1)) await sleep(50);
    // What another worker's stalled check does to a job it takes over: the lock is no longer this worker's.
    const connection = connect(redis.url);
    const q = new Queue(queue, { connection });
    const [job] = await q.getActive();
    expect(await connection.del(`bull:${queue}:${job!.id}:lock`)).toBe(1);
    while (Date.now() < deadline && !isDone(cell.dir)) await sleep(200);
    await q.close();
    connection.disconnect();
    expect(w.out).toContain(`job ${job!.id} lost its lock (declared stalled; it may run elsewhere now): stopping ${cell.dir}`);
    const ev = readMetrics(cell.dir);
    expect(ev.filter((e) => e.type === 'runEnd').map((e) => e.status), w.out).toEqual(['completed']);
    const starts = ev.filter((e) => e.type === 'runStart').map((e) => e.startEpoch!);
    expect(starts).toHaveLength(2);
    expect(starts[1]).toBeGreaterThanOrEqual(1);
    expect(await settledCounts(redis.url, queue)).toMatchObject({ completed: 1, failed: 0, active: 0 });
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  it('dfd grid run --queue follows the workers to the end and prints the report; status --queue; worker --until-empty exits', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-cli-'));
    const file = join(dir, 'grid.json');
    writeFileSync(file, JSON.stringify({ base: { ...GRID.base, epochs: 1 }, axes: { variant: ['base', 'att'] } }));
    const queue = `dfd-grid-cli-${process.pid}`;
    const out = join(dir, 'out');
    const w = startWorker(redis.url, queue, ['--until-empty']);
    workers.push(w);
    const run = await cli(['grid', 'run', file, '--out', out, '--queue', redis.url, '--queue-name', queue]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`dfd grid: queued 2 jobs on ${redis.url} (0 already done, 0 already queued)`);
    expect(run.stderr).toMatch(/dfd grid: waiting 0 · running 0 · done 2 · failed 0 · ETA 0s/);
    expect(run.stdout).toMatch(/\| base \| .* \| [0-9.]+ \| [0-9.]+ \| 1 \|/);
    expect(run.stdout).toMatch(/\| att − base \| [-+][0-9.]+ \| [-+][0-9.]+ \| [-+][0-9.]+ \| 1 \|/);
    expect(await w.exited, w.out).toBe(0);
    expect(w.out).toContain('queue empty: closing');
    const status = await cli(['grid', 'status', out, '--queue', redis.url, '--queue-name', queue, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout);
    expect(s.summary).toMatchObject({ waiting: 0, running: 0, done: 2, failed: 0 });
    expect(s.cells.map((c: { epoch: number; epochs: number }) => [c.epoch, c.epochs])).toEqual([[1, 1], [1, 1]]);
    expect(s.queue).toMatchObject({ completed: 2, active: 0, waiting: 0, failed: 0 });
  });
});

describe.skipIf(!haveRedisServer())('bounded retries and honest exits with Redis away (#24 case 8)', () => {
  const procs: WorkerProc[] = [];
  afterAll(() => {
    for (const w of procs) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  });
  const timed = async (w: WorkerProc) => {
    const t0 = Date.now();
    const code = await w.exited;
    return { code, seconds: (Date.now() - t0) / 1000 };
  };

  it('a worker with Redis unreachable, or a database Redis refuses, exits 1 naming the cause within --redis-timeout', { timeout: 120_000 }, async () => {
    const r = await startRedis();
    const deadUrl = r.url;
    await r.stop();
    const unreachable = startWorker(deadUrl, 'q', ['--until-empty', '--redis-timeout', '2000']);
    procs.push(unreachable);
    const a = await timed(unreachable);
    expect(a.code, unreachable.out).toBe(1);
    expect(a.seconds).toBeLessThan(30);
    expect(unreachable.out).toContain(`dfd: Redis at ${deadUrl} did not answer within 2 s (retried with backoff): `);
    expect(unreachable.out).toMatch(/ECONNREFUSED/);
    const live = await startRedis();
    try {
      const badDb = startWorker(`${live.url}/99`, 'q', ['--redis-timeout', '5000']);
      procs.push(badDb);
      const b = await timed(badDb);
      expect(b.code, badDb.out).toBe(1);
      expect(b.seconds).toBeLessThan(30);
      expect(badDb.out).toContain(`dfd: Redis at ${live.url}/99 refused the connection's setup: ERR DB index is out of range`);
    } finally {
      await live.stop();
    }
  });

  it('a worker whose Redis goes away gives up after --redis-timeout with exit 1 (not SIGTERM: closing forever); its errors are rate-limited', { timeout: 120_000 }, async () => {
    const r = await startRedis();
    const w = startWorker(r.url, `q-away-${process.pid}`, ['--until-empty', '--redis-timeout', '3000']);
    procs.push(w);
    for (let i = 0; i < 200 && !w.out.includes('waiting for jobs'); i++) await sleep(100);
    expect(w.out).toContain('waiting for jobs');
    await r.stop();
    const t = await timed(w);
    expect(t.code, w.out).toBe(1);
    expect(t.seconds).toBeLessThan(40);
    expect(w.out).toMatch(new RegExp(`dfd: Redis at ${r.url.replace(/[.]/g, '\\.')} has not answered for \\d+ s`));
    // Reconnection backs off to 5 s: a handful of error lines, not 3 a second.
    expect((w.out.match(/worker error:/g) ?? []).length).toBeLessThan(10);
  });

  it('dfd grid run --queue fails with a clear message when the queue lost the grid\'s jobs (Redis restarted empty), and when Redis goes away', { timeout: 180_000 }, async () => {
    const r = await startRedis();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-lost-'));
      const file = join(dir, 'grid.json');
      writeFileSync(file, JSON.stringify({ base: { ...GRID.base, epochs: 1 }, axes: { variant: ['base', 'att'] } }));
      const out = join(dir, 'out');
      const queue = `dfd-grid-lost-${process.pid}`;
      // No worker: the jobs wait; then Redis loses everything (what a restart without persistence does).
      const run = cli(['grid', 'run', file, '--out', out, '--queue', r.url, '--queue-name', queue, '--redis-timeout', '3000']);
      const redis = connect(r.url);
      for (let i = 0; i < 300 && (await queueCounts({ url: r.url, name: queue })).waiting !== 2; i++) await sleep(100);
      await redis.flushall();
      redis.disconnect();
      const t0 = Date.now();
      const lost = await run;
      expect(lost.code, lost.stderr).toBe(1);
      expect((Date.now() - t0) / 1000).toBeLessThan(30);
      expect(lost.stderr).toContain(`holds no job for 2 unfinished cells of ${out} (variant=base; variant=att): Redis restarted empty or the queue was flushed`);
      expect(lost.stderr).toContain(`Enqueue them again with: dfd grid run ${file} --out ${out} --queue ${r.url} --queue-name ${queue}`);
      // Enqueued again, then Redis stops: the follower gives up after --redis-timeout.
      const again = cli(['grid', 'run', file, '--out', out, '--queue', r.url, '--queue-name', queue, '--redis-timeout', '3000']);
      for (let i = 0; i < 300 && (await queueCounts({ url: r.url, name: queue })).waiting !== 2; i++) await sleep(100);
      await r.stop();
      const away = await again;
      expect(away.code, away.stderr).toBe(1);
      expect(away.stderr).toMatch(/dfd: Redis at .* has not answered for \d+ s .*stopped following/);
    } finally {
      await r.stop();
    }
  });
});

describe('run-folder locks of stalled jobs', () => {
  it('a lock taken on another machine is taken over, one of this machine is left to the trainer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dfd-grid-lock-'));
    writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid: 5, host: 'another-machine', started: '2026-12-05T00:00:00Z', command: 'dfd grid cell' }));
    expect(takeOverForeignLock(dir)).toBe('another-machine (pid 5)');
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
    writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid: 5, host: hostname(), started: '2026-12-05T00:00:00Z', command: 'dfd grid cell' }));
    expect(takeOverForeignLock(dir)).toBeNull();
    expect(existsSync(join(dir, 'run.lock'))).toBe(true);
    expect(takeOverForeignLock(mkdtempSync(join(tmpdir(), 'dfd-grid-nolock-')))).toBeNull();
  });
});
