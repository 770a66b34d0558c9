import * as tf from '@tensorflow/tfjs-core';
import { TOKENS, type EventBus } from '@dfd/core';
import { SYNTHETIC_DOMAINS, createSyntheticDataset, decodeImage, evalTransform, syntheticFactors } from '@dfd/datasets';
import { createDfdNet, createEife } from '@dfd/model';
import { DfdTask, composeTrainer, tensorBatchSource, type TrainResult } from '@dfd/trainer';
import { schedulerPlugins } from '@dfd/plugin-schedulers';

/** Settings of the in-browser training demo; all small, because the point is the code path. */
export interface TrainDemoOptions {
  /** One seed for data, weights and batch order. */
  seed: number;
  steps: number;
  batchSize: number;
  /** Synthetic domain (SYNTHETIC_DOMAINS), e.g. 'studio'. */
  domain: string;
  /** Image side in pixels = model input size. */
  size: number;
  /** DFD-Net channel multiplier (1 = the paper's 64 base channels). */
  width: number;
  /** Size of each EIFE embedding d_k and MI head (paper: 256). */
  miDim: number;
  /** One learning rate for every group: the backbone is not pre-trained here. */
  lr: number;
}

/** The defaults: the full att+eifp loss, tiny enough for WebGPU on a CPU adapter (SwiftShader). */
export const TRAIN_DEMO_DEFAULTS: TrainDemoOptions = {
  seed: 1,
  steps: 20,
  batchSize: 4,
  domain: 'studio',
  size: 48,
  width: 1 / 16,
  miDim: 16,
  lr: 5e-4,
};

/** Reads `?seed=&steps=&batch=&domain=&size=&width=&lr=` over the defaults; unknown domains fail. */
export function demoOptionsFromUrl(search: string): TrainDemoOptions {
  const q = new URLSearchParams(search);
  const num = (key: string, fallback: number) => {
    const raw = q.get(key);
    if (raw === null) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`?${key}=${raw}: must be a positive number`);
    return v;
  };
  const domain = q.get('domain') ?? TRAIN_DEMO_DEFAULTS.domain;
  if (!SYNTHETIC_DOMAINS[domain]) throw new Error(`?domain=${domain}: choose one of ${Object.keys(SYNTHETIC_DOMAINS).join(', ')}`);
  const d = TRAIN_DEMO_DEFAULTS;
  return {
    seed: num('seed', d.seed),
    steps: Math.round(num('steps', d.steps)),
    batchSize: Math.round(num('batch', d.batchSize)),
    domain,
    size: Math.round(num('size', d.size)),
    width: num('width', d.width),
    miDim: Math.round(num('mi', d.miDim)),
    lr: num('lr', d.lr),
  };
}

/** One line for the page header. */
export function describeDemo(o: TrainDemoOptions): string {
  return `DFD-Net att+eifp, width ${o.width} (${Math.round(64 * o.width)} base channels), ${o.size}×${o.size}, batch ${o.batchSize}, synthetic:${o.domain}, seed ${o.seed}, AdamW lr ${o.lr}`;
}

/**
 * Run `steps` DFD-Net training steps with @dfd/trainer's own loop (`composeTrainer` +
 * `DfdTask`: L = L_cls + gamma(p) * L_MI, AdamW, GRL) on a synthetic domain rendered in memory,
 * on whatever tfjs backend is active. `attach` receives the run's EventBus before the first
 * step, to subscribe to `batchEnd` and friends. Two frozen, randomly initialised EIFEs stand in
 * for the stage-1 extractors, so the MI term is live. Everything is seeded: the same options give
 * the same losses on every backend, up to float rounding.
 */
export async function runTrainingDemo(opts: TrainDemoOptions, attach: (bus: EventBus) => void): Promise<TrainResult> {
  const n = opts.steps * opts.batchSize;
  const dataset = createSyntheticDataset(opts.domain, { train: n, test: 0, size: opts.size, seed: opts.seed });
  const samples = dataset.splits.train ?? [];
  const transform = evalTransform({ size: opts.size });
  const per = opts.size * opts.size * 3;
  const images = new Float32Array(n * per);
  const expression = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = samples[i]!;
    images.set(transform(await decodeImage(s.image)).data, i * per);
    expression[i] = s.expression ?? 0;
  }
  const data = tensorBatchSource({ images, shape: [opts.size, opts.size, 3], expression }, { batchSize: opts.batchSize, seed: opts.seed, shuffle: true, dropLast: true });

  const model = createDfdNet({ variant: 'att+eifp', width: opts.width, inputSize: opts.size, miDims: [opts.miDim, opts.miDim], miHidden: opts.miDim, seed: opts.seed });
  const factors = syntheticFactors();
  // As in the paper: EIFE-1 for attributes, EIFE-2 for identity, pose and illumination.
  const groups = [['skin', 'age'], ['identity', 'pose', 'illumination']];
  const extractors = groups.map((names, k) =>
    createEife({ factors: factors.filter((f) => names.includes(f.name)), width: opts.width, inputSize: opts.size, embedDim: opts.miDim, seed: opts.seed + 1 + k }),
  );
  const task = new DfdTask(model, extractors);
  const { trainer, container } = composeTrainer({
    task,
    data,
    seed: opts.seed,
    options: { epochs: 1, runId: 'browser-demo', lr: { backbone: opts.lr, heads: opts.lr }, config: { ...opts, backend: tf.getBackend() } },
    // The step's controls come from scheduler plugins: constant learning rates, the paper's gamma(p), lambda 1.
    plugins: schedulerPlugins({ cosine: false, gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } }),
  });
  attach(container.resolve<EventBus>(TOKENS.Bus));
  try {
    return await trainer.run();
  } finally {
    trainer.adamw.dispose();
    model.dispose();
    for (const e of extractors) e.dispose();
  }
}
