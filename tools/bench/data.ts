/*
 * Data pipeline throughput of @dfd/datasets: decode (or render) + paper augmentation + batching
 * into tensors, 90x90 batches of 32, from synthetic faces and from JPEG files on disk.
 * `benchData()` is called by tools/bench/run.ts; run alone with
 *
 *   node --conditions=@dfd/source --import tsx tools/bench/data.ts [--quick] [--json]
 *
 * Images per second are reported both per wall-clock second and per second of this process's
 * CPU time (the machine is shared; wall time also measures the neighbours). Sharp decodes on
 * libuv threads, so CPU time can exceed wall time.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import sharp from 'sharp';
import { createLoader, createSyntheticDataset, decodeImage, disposeBatch, evalTransform, trainTransform, type Sample, type Transform } from '@dfd/datasets';
import { createNodeDatasetRegistry } from '@dfd/datasets/node';

/** One measured pipeline. */
export interface DataBenchResult {
  name: string;
  /** Images per wall-clock second. */
  imagesPerSecond: number;
  /** Images per second of process CPU time (user + system, all threads). */
  imagesPerCpuSecond: number;
  images: number;
  batchSize: number;
  size: number;
  seconds: number;
}

async function measure(name: string, samples: Sample[], transform: Transform, batches: number, options: { cache?: boolean } = {}): Promise<DataBenchResult> {
  const batchSize = 32;
  const size = 90;
  const loader = createLoader(samples, { batchSize, transform, seed: 1, prefetch: 2, dropLast: true, cache: options.cache });
  // Warm-up: JIT, sharp's thread pool, the cache when enabled (one full epoch then).
  const warm = options.cache ? loader.length : 1;
  let seen = 0;
  const iter = async function* () {
    while (true) for await (const b of loader) yield b;
  };
  const it = iter();
  for (let i = 0; i < warm; i++) disposeBatch((await it.next()).value!);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) {
    const b = (await it.next()).value!;
    if (b.images.shape[1] !== size) throw new Error(`unexpected batch shape ${b.images.shape.join('x')}`);
    seen += b.images.shape[0];
    disposeBatch(b);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await it.return(undefined as never);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return { name, imagesPerSecond: seen / seconds, imagesPerCpuSecond: seen / cpuSeconds, images: seen, batchSize, size, seconds };
}

/** Measures the data pipelines; `quick` runs fewer batches. */
export async function benchData(options: { quick?: boolean } = {}): Promise<DataBenchResult[]> {
  if (!tf.getBackend()) await tf.setBackend('cpu');
  const batches = options.quick ? 4 : 16;
  const n = 32 * (batches + 2);
  const train = trainTransform({ size: 90 });
  const results: DataBenchResult[] = [];

  const synth48 = createSyntheticDataset('wild', { train: n, test: 0, size: 48, seed: 1 }).splits.train!;
  results.push(await measure('synthetic:wild 48px render + train augment -> 90x90', synth48, train, batches));
  results.push(await measure('synthetic:wild 48px cached + train augment -> 90x90', synth48, train, batches, { cache: true }));

  const dir = await mkdtemp(join(tmpdir(), 'dfd-bench-data-'));
  try {
    // JPEG files written from synthetic faces at 100x100 (RAF-DB aligned size), class folders.
    const faces = createSyntheticDataset('studio', { train: n, test: 0, size: 100, seed: 2 }).splits.train!;
    const names = ['surprise', 'fear', 'disgust', 'happy', 'sad', 'angry', 'neutral'];
    await Promise.all(
      faces.map(async (s, i) => {
        const img = await decodeImage(s.image);
        const path = join(dir, 'train', names[s.expression!]!, `${i}.jpg`);
        await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
          .jpeg({ quality: 90 })
          .toFile(await ensureParent(path));
      }),
    );
    const files = (await createNodeDatasetRegistry().resolve(`folder:${dir}`)).splits.train!;
    results.push(await measure('jpeg 100x100 files: sharp decode + train augment -> 90x90', files, train, batches));
    results.push(await measure('jpeg 100x100 files: sharp decode + eval resize -> 90x90', files, evalTransform({ size: 90 }), batches));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

async function ensureParent(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  return path;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const results = await benchData({ quick });
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else {
    process.stdout.write(`dfd data bench (batch 32, 90x90${quick ? ', quick' : ''})\n`);
    for (const r of results) process.stdout.write(`${r.name.padEnd(62)} ${r.imagesPerSecond.toFixed(0).padStart(6)} img/s wall  ${r.imagesPerCpuSecond.toFixed(0).padStart(6)} img/s cpu\n`);
  }
}
