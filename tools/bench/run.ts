/*
 * `npm run bench`: DFD-Net training step and inference on every available tfjs backend, the
 * same step in PyTorch (when /usr/bin/python3 has torch), optional wasm kernel GFLOP/s, the
 * batch-128 memory check, and tools/bench/data.ts's benchData() when present. Prints a table
 * with ratios and writes JSON (bench-results.json, or --out PATH).
 *
 *   npm run bench -- [--quick] [--out PATH] [--backends wasm,cpu] [--net dfd|resnet]
 *                    [--batch 32] [--size 90] [--steps N] [--width 1] [--stock] [--kernels]
 *                    [--mem-steps N] [--mem-batch 128] [--mem-micro 32] [--no-torch] [--threads N] [--torch-threads N]
 *
 * --threads sets the wasm backend's threads in Node (DFD_WASM_THREADS for the measuring child
 * processes; default: the CPUs, at most 8); PyTorch gets the same count unless --torch-threads.
 * Times are medians over --steps after one warm-up step; both wall-clock and process CPU time
 * (all threads) are reported. Targets and ratios use wall time, the time a user waits; on a
 * shared machine, compare the CPU-time columns too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import {
  parseThreadCount,
  probeBackends,
  registerWasmTrainingKernels,
  setWasmWinograd,
  unregisterWasmTrainingKernels,
  useBackend,
  wasmWinogradEnabled,
  type BackendName,
} from '@dfd/backends';
import { createBenchNet, inferStep, randomBatch, trainStep } from './train.js';
import { benchFrozenBackbone, type FrozenBenchResult } from './zoo.js';

const HERE = dirname(fileURLToPath(import.meta.url));

interface Args {
  quick: boolean;
  out: string;
  backends?: string[];
  net: 'dfd' | 'resnet';
  batch: number;
  size: number;
  steps: number;
  width: number;
  stock: boolean;
  kernels: boolean;
  memSteps: number;
  memBatch: number;
  memMicro: number;
  torch: boolean;
  /** Also measure att+eifp on the face-api backbone, frozen vs trained (--no-zoo skips). */
  zoo: boolean;
  threads: number;
  torchThreads: number;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const has = (name: string): boolean => argv.includes(`--${name}`);
  const quick = has('quick');
  const net = get('net') ?? 'dfd';
  const threads = parseThreadCount(get('threads') ?? process.env.DFD_WASM_THREADS ?? Math.min(8, availableParallelism()), '--threads (or DFD_WASM_THREADS)');
  if (net !== 'dfd' && net !== 'resnet') throw new Error(`--net must be dfd or resnet, got ${net}`);
  return {
    quick,
    out: get('out') ?? 'bench-results.json',
    backends: get('backends')?.split(','),
    net,
    batch: Number(get('batch') ?? 32),
    size: Number(get('size') ?? 90),
    steps: Number(get('steps') ?? (quick ? 2 : 5)),
    width: Number(get('width') ?? 1),
    stock: has('stock'),
    kernels: has('kernels'),
    memSteps: Number(get('mem-steps') ?? (quick ? 0 : 3)),
    memBatch: Number(get('mem-batch') ?? 128),
    memMicro: Number(get('mem-micro') ?? 32),
    torch: !has('no-torch'),
    zoo: !has('no-zoo'),
    threads,
    torchThreads: Number(get('torch-threads') ?? threads),
  };
}

interface Timing {
  stepMs: number;
  cpuMs: number;
  imgPerSec: number;
  imgPerCpuSec: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

/** Median wall and CPU time of `steps` calls after one warm-up call. */
function timed(batch: number, steps: number, fn: () => void): Timing {
  fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const stepMs = median(wall);
  const cpuMs = median(cpu);
  return { stepMs, cpuMs, imgPerSec: (batch * 1000) / stepMs, imgPerCpuSec: (batch * 1000) / cpuMs };
}

interface BackendResult {
  backend: string;
  label: string;
  net: string;
  netWhy: string;
  reason: string;
  /** Batch the training step ran at (smaller than asked when the asked one did not fit). */
  batch: number;
  trainNote?: string;
  train?: Timing & { leakedTensors: number; lossFirst: number; lossLast: number };
  infer?: Timing;
  /** wasm: inference with Winograd off (XNNPACK's direct convolution everywhere). */
  inferDirect?: Timing;
  inferBatch?: number;
  error?: string;
}

type Mode = 'train' | 'infer';

/** One measurement in this process (run as a child of the orchestrator: a wasm abort kills the module). */
async function measure(name: string, mode: Mode, args: Args, batch: number, stock: boolean): Promise<Partial<BackendResult>> {
  const used = await useBackend(name as BackendName);
  if (stock) {
    unregisterWasmTrainingKernels();
    registerWasmTrainingKernels(['Conv2DBackpropFilter']);
  }
  const { net, why } = await createBenchNet({ net: args.net, width: args.width, size: args.size });
  const out: Partial<BackendResult> = { net: net.name, netWhy: why, reason: used.reason };
  const { x, labels } = randomBatch(1, batch, args.size);
  const opt = tf.train.adam(1e-3);
  const steps = name === 'cpu' ? 1 : args.steps;
  try {
    if (mode === 'train') {
      const losses: number[] = [];
      let before = -1;
      const t = timed(batch, steps, () => {
        losses.push(trainStep(net, opt, x, labels));
        if (before < 0) before = tf.memory().numTensors;
      });
      out.train = { ...t, leakedTensors: tf.memory().numTensors - before, lossFirst: losses[0] ?? NaN, lossLast: losses[losses.length - 1] ?? NaN };
    } else {
      // timed() warms up with one pass (every filter's first use: direct convolution); this second
      // one builds the Winograd transformed filters on wasm, so the timed passes are steady state.
      inferStep(net, x);
      out.infer = timed(batch, steps, () => inferStep(net, x));
      if (used.name === 'wasm' && wasmWinogradEnabled()) {
        setWasmWinograd(false);
        out.inferDirect = timed(batch, steps, () => inferStep(net, x));
        setWasmWinograd(true);
      }
    }
  } finally {
    opt.dispose();
    tf.dispose([x, labels]);
    net.dispose();
  }
  return out;
}

/** Runs this script again as a child for one measurement; returns its JSON (or the error). */
function child(argv: string[], timeoutMs = 3_600_000): { ok: true; value: unknown } | { ok: false; error: string } {
  const i = argv.indexOf('--threads');
  const threads = i >= 0 ? argv[i + 1] : undefined;
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
    encoding: 'utf8',
    env: { ...process.env, ...(threads != null ? { DFD_WASM_THREADS: threads } : {}) },
    timeout: timeoutMs,
    maxBuffer: 64 * 2 ** 20,
  });
  const lines = r.stdout.trim().split('\n');
  const tag = lines.reverse().find((l) => l.startsWith('@@result '));
  if (tag) return { ok: true, value: JSON.parse(tag.slice(9)) as unknown };
  // Emscripten prints its whole minified module on a crash: keep the short, telling line.
  const all = (r.stdout + '\n' + r.stderr).split('\n').filter((l) => l.length < 400);
  const err = all.find((l) => /Aborted\(|out of bounds|RangeError|Error:/.test(l)) ?? `exit ${String(r.status)}${r.signal ? ` (${r.signal})` : ''}`;
  return { ok: false, error: err.trim().slice(0, 300) };
}

function passArgs(args: Args): string[] {
  return ['--net', args.net, '--size', String(args.size), '--steps', String(args.steps), '--width', String(args.width), '--threads', String(args.threads)];
}

/** Training with fallback to smaller batches when the asked one does not fit (wasm32 heap is 4 GB), then inference. */
function benchBackend(name: string, label: string, args: Args, stock: boolean, log: (s: string) => void): BackendResult {
  const result: BackendResult = { backend: name, label, net: '', netWhy: '', reason: '', batch: args.batch };
  const failed: string[] = [];
  for (let batch = name === 'cpu' ? Math.min(2, args.batch) : args.batch; batch >= 4; batch = Math.floor(batch / 2)) {
    const r = child(['--child', name, '--mode', 'train', '--batch', String(batch), ...(stock ? ['--stock'] : []), ...passArgs(args)]);
    if (r.ok) {
      Object.assign(result, r.value);
      result.batch = batch;
      break;
    }
    failed.push(`batch ${batch}: ${r.error}`);
    log(`  training at batch ${batch} failed: ${r.error}`);
    if (!/Aborted|out of bounds|memory|heap/i.test(r.error)) break;
  }
  if (failed.length > 0) result.trainNote = `did not fit or failed: ${failed.join('; ')}`;
  if (!result.train) result.error = failed.join('; ');
  const inferBatch = name === 'cpu' ? Math.min(2, args.batch) : args.batch;
  const ri = child(['--child', name, '--mode', 'infer', '--batch', String(inferBatch), ...passArgs(args)]);
  if (ri.ok) {
    const v = ri.value as Partial<BackendResult>;
    result.infer = v.infer;
    if (v.inferDirect) result.inferDirect = v.inferDirect;
    result.inferBatch = inferBatch;
    if (!result.net) Object.assign(result, { net: v.net, netWhy: v.netWhy, reason: v.reason });
  } else {
    result.error = [result.error, `inference: ${ri.error}`].filter(Boolean).join('; ');
  }
  return result;
}

interface MemResult {
  backend: string;
  error?: string;
  batch: number;
  /** Micro-batch size when the batch was split (gradients summed). */
  micro?: number;
  steps: number;
  rssMb: number[];
  firstMb: number;
  lastMb: number;
  maxMb: number;
  growthMbAfterStep2: number;
  numTensors: number[];
}

async function benchMemory(name: string, args: Args): Promise<MemResult> {
  await useBackend(name as BackendName);
  const { net } = await createBenchNet({ net: args.net, width: args.width, size: args.size });
  const { x, labels } = randomBatch(2, args.memBatch, args.size);
  const opt = tf.train.adam(1e-3);
  const rssMb: number[] = [];
  const numTensors: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < args.memSteps; i++) {
    const loss = trainStep(net, opt, x, labels, 7, args.memMicro);
    rssMb.push(process.memoryUsage().rss / 2 ** 20);
    numTensors.push(tf.memory().numTensors);
    // Progress on stderr (the result goes to stdout at the end): a 100-step run takes over an hour.
    process.stderr.write(`[memory] step ${i + 1}/${args.memSteps}: rss ${fmt(rssMb[i], 0)} MB, numTensors ${numTensors[i]}, loss ${fmt(loss, 4)}, ${fmt((performance.now() - t0) / 1000, 0)} s\n`);
  }
  opt.dispose();
  tf.dispose([x, labels]);
  net.dispose();
  const after2 = rssMb.slice(Math.min(1, rssMb.length - 1));
  return {
    backend: name,
    batch: args.memBatch,
    micro: args.memMicro > 0 && args.memMicro < args.memBatch ? args.memMicro : undefined,
    steps: args.memSteps,
    rssMb,
    firstMb: rssMb[0] ?? NaN,
    lastMb: rssMb[rssMb.length - 1] ?? NaN,
    maxMb: Math.max(...rssMb),
    growthMbAfterStep2: (after2[after2.length - 1] ?? NaN) - (after2[0] ?? NaN),
    numTensors,
  };
}

/** Per-layer GFLOP/s of the conv gradients on wasm, stock kernels vs ours (ResNet-18 shapes at 90x90). */
async function benchKernels(args: Args): Promise<Array<Record<string, number | string>>> {
  await useBackend('wasm');
  const b = args.batch;
  const layers: Array<[string, [number, number, number, number], [number, number, number, number], number]> = [
    ['stem 7x7/2', [b, 90, 90, 3], [7, 7, 3, 64], 2],
    ['layer1 3x3', [b, 23, 23, 64], [3, 3, 64, 64], 1],
    ['layer2 3x3/2', [b, 23, 23, 64], [3, 3, 64, 128], 2],
    ['layer2 1x1/2', [b, 23, 23, 64], [1, 1, 64, 128], 2],
    ['layer3 3x3', [b, 6, 6, 256], [3, 3, 256, 256], 1],
    ['layer4 3x3', [b, 3, 3, 512], [3, 3, 512, 512], 1],
  ];
  const best = (f: () => tf.Tensor, reps: number): number => {
    tf.tidy(() => void f().dataSync());
    let ms = Infinity;
    for (let i = 0; i < reps; i++) {
      const c0 = process.cpuUsage();
      tf.tidy(() => void f().dataSync());
      const c = process.cpuUsage(c0);
      ms = Math.min(ms, (c.user + c.system) / 1000);
    }
    return ms;
  };
  const reps = args.quick ? 1 : 3;
  const rows: Array<Record<string, number | string>> = [];
  for (const [name, xs, ws, s] of layers) {
    const x = tf.randomNormal(xs) as tf.Tensor4D;
    const w = tf.randomNormal(ws) as tf.Tensor4D;
    const y = tf.conv2d(x, w, s, 'same');
    const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
    const gflop = (2 * y.size * (ws[0] ?? 1) * (ws[1] ?? 1) * (ws[2] ?? 1)) / 1e9;
    const rate = (ms: number): number => Math.round((gflop / (ms / 1000)) * 10) / 10;
    const dW = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: ws }) as tf.Tensor;
    const dx = () => tf.conv2dTranspose(dy, w, xs as [number, number, number, number], s, 'same');
    const fwd = rate(best(() => tf.conv2d(x, w, s, 'same'), reps));
    const dwOurs = rate(best(dW, reps));
    const dxOurs = rate(best(dx, reps));
    unregisterWasmTrainingKernels();
    const dxStock = rate(best(dx, 1));
    registerWasmTrainingKernels();
    rows.push({ layer: name, gflop: Math.round(gflop * 1000) / 1000, conv2dFwd: fwd, dWStock: 'missing', dWOurs: dwOurs, dxStock, dxOurs });
    tf.dispose([x, w, y, dy]);
  }
  for (const [m, k, n] of [[b * 81, 512, 512], [b, 1024, 7]] as const) {
    const a = tf.randomNormal([k, m]);
    const bb = tf.randomNormal([k, n]);
    const gflop = (2 * m * k * n) / 1e9;
    const rate = (ms: number): number => Math.round((gflop / (ms / 1000)) * 10) / 10;
    const tA = () => tf.matMul(a, bb, true, false);
    const ours = rate(best(tA, reps));
    unregisterWasmTrainingKernels();
    const stock = rate(best(tA, 1));
    registerWasmTrainingKernels();
    rows.push({ layer: `matMul^T ${m}x${k}x${n}`, gflop: Math.round(gflop * 1000) / 1000, conv2dFwd: '', dWStock: '', dWOurs: '', dxStock: stock, dxOurs: ours });
    tf.dispose([a, bb]);
  }
  return rows;
}

function runTorch(args: Args): Record<string, unknown> {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return { skipped: `${py} not found` };
  const probe = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { skipped: 'no torch in /usr/bin/python3 (apt-get install python3-torch)' };
  const r = spawnSync(
    py,
    [join(HERE, 'torch_bench.py'), '--batch', String(args.batch), '--size', String(args.size), '--steps', String(args.steps), '--threads', String(args.torchThreads), '--width', String(args.width), '--net', args.net],
    { encoding: 'utf8', timeout: 1_800_000 },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { error: `torch_bench.py failed (status ${String(r.status)}): ${r.stderr.trim().split('\n').pop() ?? ''}` };
  }
}

async function runBenchData(args: Args): Promise<unknown> {
  const file = join(HERE, 'data.ts');
  if (!existsSync(file)) return { skipped: 'tools/bench/data.ts not present' };
  try {
    const spec = './data.js';
    const mod = (await import(/* @vite-ignore */ spec)) as { benchData?: (o: { quick: boolean }) => unknown };
    if (typeof mod.benchData !== 'function') return { skipped: 'tools/bench/data.ts has no benchData()' };
    return await mod.benchData({ quick: args.quick });
  } catch (e) {
    return { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
}

const fmt = (v: number | undefined, d = 2): string => (v == null || !Number.isFinite(v) ? '-' : v.toFixed(d));

async function childMain(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const name = argv[argv.indexOf('--child') + 1] ?? 'wasm';
  let value: unknown;
  if (argv.includes('--zoo-frozen')) {
    await useBackend(name as BackendName);
    value = benchFrozenBackbone(args.batch, args.steps, argv.includes('--zoo-base') ? 'base' : 'att+eifp');
  } else if (argv.includes('--mem')) value = await benchMemory(name, args);
  else value = await measure(name, (argv[argv.indexOf('--mode') + 1] ?? 'train') as Mode, args, args.batch, argv.includes('--stock'));
  process.stdout.write(`@@result ${JSON.stringify(value)}\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // This process (probes, --kernels) uses the same wasm thread count as the measuring children.
  process.env.DFD_WASM_THREADS = String(args.threads);
  const started = new Date().toISOString();
  const probes = await probeBackends();
  const log = (s: string): void => void process.stdout.write(s + '\n');
  log(`dfd bench  ${started}  node ${process.versions.node}  batch ${args.batch}  ${args.size}x${args.size}  steps ${args.steps}  wasm threads ${args.threads}  torch threads ${args.torchThreads}${args.quick ? '  (quick)' : ''}`);
  for (const p of probes) log(`  ${p.available ? '+' : '-'} ${p.name.padEnd(15)} ${p.available ? (p.note ?? '') : (p.reason ?? '').slice(0, 110)}`);

  const skipped: string[] = [];
  const wanted = args.backends ?? probes.filter((p) => p.available && p.name !== 'webgpu' && p.name !== 'cpu').map((p) => p.name);
  if (args.backends == null) {
    skipped.push('cpu (pure JS, ~0.03 img/s: pass --backends cpu,wasm to include it; it runs 1 step at batch 2)');
    if (probes.some((p) => p.name === 'webgpu' && p.available)) skipped.push('webgpu (Node/Dawn without a GPU is a correctness path: --backends webgpu)');
  }
  const results: BackendResult[] = [];
  for (const name of wanted) {
    log(`\n[${name}] training (batch ${args.batch}, smaller if it does not fit) + inference (batch ${args.batch}) ...`);
    const r = benchBackend(name, name, args, false, log);
    results.push(r);
    log(`  ${r.net} (${r.netWhy})${r.error ? `\n  error: ${r.error}` : ''}`);
  }
  if (args.stock && wanted.includes('wasm')) {
    log('\n[wasm-stock] stock wasm kernels + only our Conv2DBackpropFilter (without it wasm cannot train) ...');
    results.push(benchBackend('wasm', 'wasm (stock kernels + dfd Conv2DBackpropFilter only)', args, true, log));
  }

  let torch: Record<string, unknown> = { skipped: '--no-torch' };
  if (args.torch) {
    log(`\n[pytorch] same step, ${args.torchThreads} thread(s) ...`);
    torch = runTorch(args);
  }

  let kernels: Array<Record<string, number | string>> | undefined;
  if (args.kernels && wanted.includes('wasm')) {
    log('\n[kernels] wasm conv-gradient GFLOP/s (CPU time), stock vs dfd ...');
    kernels = await benchKernels(args);
  }

  let memory: MemResult | undefined;
  let memoryFallback: MemResult | undefined;
  const best = results.filter((r) => r.train && !r.error).sort((a, b) => (b.train?.imgPerSec ?? 0) - (a.train?.imgPerSec ?? 0))[0];
  if (args.memSteps > 0 && best) {
    log(`\n[memory] ${best.backend}, batch ${args.memBatch}${args.memMicro > 0 && args.memMicro < args.memBatch ? ` in micro-batches of ${args.memMicro}` : ''}, ${args.memSteps} steps ...`);
    // About 50 s per batch-128 step on 2 threads: allow 2 minutes a step.
    const r = child(['--child', best.backend, '--mem', '--mem-steps', String(args.memSteps), '--mem-batch', String(args.memBatch), '--mem-micro', String(args.memMicro), ...passArgs(args)], Math.max(3_600_000, args.memSteps * 120_000));
    memory = r.ok
      ? (r.value as MemResult)
      : ({ backend: best.backend, batch: args.memBatch, steps: args.memSteps, error: r.error } as MemResult);
    if (!r.ok && best.batch < args.memBatch) {
      // The growth check still means something at the largest batch that trains.
      log(`  batch ${args.memBatch} failed (${r.error}); checking growth at batch ${best.batch}`);
      const r2 = child(['--child', best.backend, '--mem', '--mem-steps', String(args.memSteps), '--mem-batch', String(best.batch), '--mem-micro', '0', ...passArgs(args)]);
      if (r2.ok) memoryFallback = r2.value as MemResult;
    }
  }

  let zoo: FrozenBenchResult | { error: string } | undefined;
  let zooBase: FrozenBenchResult | { error: string } | undefined;
  if (args.zoo && best) {
    log(`\n[zoo] ${best.backend}: att+eifp on the face-api backbone (112 px, batch ${args.batch}), --freeze-backbone vs trained ...`);
    const r = child(['--child', best.backend, '--zoo-frozen', ...passArgs(args)]);
    zoo = r.ok ? (r.value as FrozenBenchResult) : { error: r.error };
    log(`[zoo] ${best.backend}: base on the frozen face-api backbone, trunk cache vs none ...`);
    const rb = child(['--child', best.backend, '--zoo-frozen', '--zoo-base', ...passArgs(args)]);
    zooBase = rb.ok ? (rb.value as FrozenBenchResult) : { error: rb.error };
  }

  const data = await runBenchData(args);

  // ---- report
  const torchTrain = (torch.train as Timing | undefined)?.imgPerSec;
  const torchInfer = (torch.infer as Timing | undefined)?.imgPerSec;
  log(`\n== results (img/s; "cpu" = images per second of this process's CPU time, all threads; wasm ${args.threads} thread(s)) ==`);
  log('backend'.padEnd(56) + 'batch'.padStart(6) + 'train wall'.padStart(11) + 'train cpu'.padStart(10) + 'infer wall'.padStart(11) + 'infer cpu'.padStart(10) + '  vs torch (train/infer, wall)');
  for (const r of results) {
    if (r.error || !r.train) {
      log(`${r.label.padEnd(56)} error: ${r.error ?? 'no result'}`);
      continue;
    }
    const ratio = torchTrain ? `${fmt(r.train.imgPerSec / torchTrain)}x / ${fmt((r.infer?.imgPerSec ?? NaN) / (torchInfer ?? NaN))}x` : '-';
    log(`${r.label.padEnd(56)}${String(r.batch).padStart(6)}${fmt(r.train.imgPerSec).padStart(11)}${fmt(r.train.imgPerCpuSec).padStart(10)}${fmt(r.infer?.imgPerSec).padStart(11)}${fmt(r.infer?.imgPerCpuSec).padStart(10)}  ${ratio}`);
  }
  if (torch.train) {
    const t = torch.train as Timing;
    const i = torch.infer as Timing;
    log(`${`pytorch ${String(torch.torch)} (${String(torch.threads)} thr): ${String(torch.net)}`.slice(0, 55).padEnd(56)}${String(torch.batch).padStart(6)}${fmt(t.imgPerSec).padStart(11)}${fmt(t.imgPerCpuSec).padStart(10)}${fmt(i.imgPerSec).padStart(11)}${fmt(i.imgPerCpuSec).padStart(10)}  1.00x`);
  } else {
    log(`pytorch: ${JSON.stringify(torch)}`);
  }
  for (const r of results) {
    if (r.inferDirect && r.infer) log(`${r.label}: inference ${fmt(r.infer.imgPerSec)} img/s with Winograd, ${fmt(r.inferDirect.imgPerSec)} without (${fmt(r.infer.imgPerSec / r.inferDirect.imgPerSec)}x, wall)`);
  }
  const wasmR = results.find((r) => r.label === 'wasm');
  const stockR = results.find((r) => r.label.startsWith('wasm (stock'));
  if (wasmR?.train && stockR?.train) log(`dfd wasm kernels vs stock: train ${fmt(wasmR.train.imgPerSec / stockR.train.imgPerSec)}x (wall)`);
  if (best?.train) {
    log(`targets: training >= 2.5 img/s on the best CPU backend: ${best.backend} ${fmt(best.train.imgPerSec)} wall (${fmt(best.train.imgPerCpuSec)} per CPU-second) -> ${best.train.imgPerSec >= 2.5 ? 'met' : 'NOT met'}`);
    log(`         inference >= 25 img/s at batch ${args.batch}: ${fmt(best.infer?.imgPerSec)} wall (${fmt(best.infer?.imgPerCpuSec)} per CPU-second) -> ${(best.infer?.imgPerSec ?? 0) >= 25 ? 'met' : 'NOT met'}`);
  }
  for (const r of results) if (r.trainNote) log(`note: ${r.label} training ${r.trainNote}`);
  if (memory?.error) log(`         batch-${memory.batch} training on ${memory.backend}: failed (${memory.error})`);
  const m = memory?.error ? memoryFallback : memory;
  if (m) {
    log(`         batch-${m.batch}${m.micro ? ` (micro-batches of ${m.micro})` : ''} RSS over ${m.steps} steps: first ${fmt(m.firstMb, 0)} MB, max ${fmt(m.maxMb, 0)} MB, last ${fmt(m.lastMb, 0)} MB, growth after step 2 ${fmt(m.growthMbAfterStep2, 0)} MB (target < 8192 MB, no growth)`);
  }
  if (kernels) {
    log('\nwasm kernels, GFLOP/s (CPU time):');
    log('layer'.padEnd(26) + 'GFLOP'.padStart(8) + 'fwd'.padStart(7) + 'dW ours'.padStart(9) + 'dx stock'.padStart(10) + 'dx ours'.padStart(9));
    for (const k of kernels) log(`${String(k.layer).padEnd(26)}${String(k.gflop).padStart(8)}${String(k.conv2dFwd).padStart(7)}${String(k.dWOurs).padStart(9)}${String(k.dxStock).padStart(10)}${String(k.dxOurs).padStart(9)}`);
  }
  if (zoo && 'error' in zoo) log(`zoo backbone: error: ${zoo.error}`);
  else if (zoo) log(`face-api backbone (112 px, batch ${zoo.batch}), att+eifp training: frozen ${fmt(zoo.frozen.imgPerSec)} img/s (${zoo.frozen.trainedParams} trained params), not frozen ${fmt(zoo.unfrozen.imgPerSec)} img/s (${zoo.unfrozen.trainedParams}): ${fmt(zoo.frozen.imgPerSec / zoo.unfrozen.imgPerSec)}x (wall)`);
  for (const z of [zoo, zooBase]) if (z && !('error' in z)) log(`  ${z.variant} frozen: ${fmt(z.frozen.imgPerSec)} img/s; + trunk cache: ${fmt(z.cached.imgPerSec)} img/s once every view is cached (${fmt(z.cached.imgPerSec / z.frozen.imgPerSec)}x the uncached frozen step; ${fmt(z.cached.bytesPerImage / 1024, 1)} KiB per view), ${fmt(z.cachedFirstEpoch.imgPerSec)} img/s in the first epoch`);
  if (zooBase && 'error' in zooBase) log(`zoo backbone (base): error: ${zooBase.error}`);
  for (const s of skipped) log(`skipped: ${s}`);

  const json = { started, finished: new Date().toISOString(), args, node: process.versions.node, tfjsCore: tf.version_core, probes, results, torch, kernels, memory, memoryFallback, zoo, zooBase, data, skipped };
  writeFileSync(args.out, JSON.stringify(json, null, 2) + '\n');
  log(`\nwrote ${args.out}`);
}

if (process.argv.includes('--child')) await childMain(process.argv.slice(2));
else await main();
