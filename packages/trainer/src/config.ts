import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { framingSchema } from '@dfd/zoo';
import { COSINE_LR_PARAMS, ConfigError, GAMMA_SCHEDULE_PARAMS, LAMBDA_SCHEDULE_PARAMS, type GammaScheduleSpec, type LambdaScheduleSpec, type ScheduleParam } from '@dfd/core';

const positive = z.number().positive();
/** The square input side (--input-size): 16..1024 px, checked before a run folder is made (100000 was a RangeError mid-run). */
const inputSizeSchema = z.number().int({ message: '--input-size must be a whole number of pixels' }).min(16, { message: '--input-size must be at least 16 pixels' }).max(1024, { message: '--input-size must be at most 1024 pixels (the images are resized to this square side; DFD-Net uses 90, ImageNet backbones 224)' });
const nonNegative = z.number().nonnegative();

/** The zod schema of one parameter rule of @dfd/core's schedule vocabulary. */
function ruleSchema(p: ScheduleParam) {
  const base = p.rule === 'positive' ? positive : p.rule === 'nonNegative' ? nonNegative : z.number();
  return p.default === undefined ? base : base.optional();
}

/** A discriminated union over a schedule table of @dfd/core (names, parameters, rules: written once, there). */
function scheduleSpecSchema<S>(table: Record<string, Record<string, ScheduleParam>>): z.ZodType<S, S> {
  const options = Object.entries(table).map(([name, params]) =>
    z.object({ name: z.literal(name), ...Object.fromEntries(Object.entries(params).map(([k, p]) => [k, ruleSchema(p)])) }).strict(),
  );
  return z.discriminatedUnion('name', options as unknown as [z.ZodObject, ...z.ZodObject[]]) as unknown as z.ZodType<S, S>;
}

const gammaSchema = scheduleSpecSchema<GammaScheduleSpec>(GAMMA_SCHEDULE_PARAMS);
const lambdaSchema = scheduleSpecSchema<LambdaScheduleSpec>(LAMBDA_SCHEDULE_PARAMS);
const cosineDefaults = { tMax: COSINE_LR_PARAMS.tMax.default, etaMin: COSINE_LR_PARAMS.etaMin.default };
const cosineSchema = z.object({ tMax: positive.default(cosineDefaults.tMax), etaMin: nonNegative.default(cosineDefaults.etaMin) }).strict();

const dataSchema = z
  .object({
    /** Mini-batch size (paper 128). */
    batchSize: z.number().int().positive().default(128),
    /**
     * Split each batch into micro-batches of at most this many samples (gradients summed before
     * the optimizer step) so that large batches fit in memory (the wasm heap is 4 GB: DFD-Net at
     * 90x90 trains at most ~32 images per pass). Batch norm then normalises per micro-batch.
     */
    microBatch: z.number().int().positive().optional(),
    /** Evaluation batch size. */
    evalBatchSize: z.number().int().positive().default(128),
    /** Paper augmentation (random resized crop, colour jitter, flip); false = resize only. */
    augment: z.boolean().default(true),
    scale: z.tuple([positive, positive]).default([0.8, 1]),
    jitter: nonNegative.max(0.5).default(0.4),
    flip: nonNegative.max(1).default(0.5),
    balanced: z.boolean().default(false),
    prefetch: z.number().int().nonnegative().default(2),
    cache: z.boolean().default(false),
    /** Use at most this many training samples (quick experiments). */
    limit: z.number().int().positive().optional(),
    /** An image file that is empty, truncated or not an image (header check before step 1): `fail` lists them all and stops, `skip` leaves them out (counted, listed in the run folder). */
    badImages: z.enum(['fail', 'skip']).default('fail'),
  })
  .strict();

const optimizerSchema = z
  .object({
    /** Learning rates: heads (attention, EIFP, classifier) and backbone (EFE). */
    lr: z
      .object({
        heads: positive.default(5e-4),
        /** Default: 1e-6 with a pretrained --backbone, else the heads rate (METHOD.md: from scratch needs the higher rate). */
        backbone: positive.optional(),
      })
      .strict()
      .default({ heads: 5e-4 }),
    weightDecay: nonNegative.default(0.01),
    beta1: nonNegative.lt(1).default(0.5),
    beta2: nonNegative.lt(1).default(0.999),
    eps: positive.default(1e-8),
  })
  .strict();

const scheduleSchema = z
  .object({
    /**
     * CosineAnnealingLR stepped per epoch; false = constant rates. This section configures the
     * scheduler plugins of `@dfd/plugin-schedulers` (`lr-scheduler`, `gamma-scheduler`,
     * `lambda-scheduler`) that the composition root adds (`createDefaultPlugins`); the trainer
     * itself builds no schedule.
     */
    cosine: z.union([cosineSchema, z.literal(false)]).default(cosineDefaults),
    /** Weight of L_MI (Eq. 10-11); the paper's gamma(p) = 2/(1+exp(-10p)) - 1. */
    gamma: gammaSchema.default({ name: 'paper' }),
    /** GRL coefficient; the paper's is 1. */
    lambda: lambdaSchema.default({ name: 'constant', value: 1 }),
  })
  .strict();

const pluginSchema = z.object({ name: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }).strict();

// eslint-disable-next-line no-control-regex
const BAD_TARGET_NAME = /[|\u0000-\u001f\u007f]/;
const BAD_TARGET_MESSAGE = "a target name (--target NAME=SPEC) may not contain '|', a line break or another control character: it is a column of report.md's tables; rename the target";
// A target's name is a column of report.md's tables and a key of report.json: no '|' and no line break or other control character.
const target = z
  .object({
    name: z
      .string()
      .min(1)
      .refine((n) => !BAD_TARGET_NAME.test(n), { message: BAD_TARGET_MESSAGE }),
    spec: z.string().min(1),
  })
  .strict();

/** Accepts `NAME=SPEC` strings, `{name, spec}` objects or a `{NAME: SPEC}` map. */
const targetsSchema = z
  .union([z.array(z.union([z.string(), target])), z.record(z.string(), z.string())])
  .transform((value, ctx) => {
    const list = Array.isArray(value) ? value : Object.entries(value).map(([name, spec]) => ({ name, spec }));
    return list.map((t, i) => {
      if (typeof t !== 'string') {
        if (BAD_TARGET_NAME.test(t.name)) ctx.addIssue({ code: 'custom', message: BAD_TARGET_MESSAGE, path: [i, 'name'] });
        return t;
      }
      const eq = t.indexOf('=');
      if (eq <= 0 || eq === t.length - 1) {
        ctx.addIssue({ code: 'custom', message: `expected NAME=SPEC (e.g. wild=synthetic:wild), got '${t}'`, path: [i] });
        return { name: t, spec: t };
      }
      const name = t.slice(0, eq);
      if (BAD_TARGET_NAME.test(name)) ctx.addIssue({ code: 'custom', message: BAD_TARGET_MESSAGE, path: [i, 'name'] });
      return { name, spec: t.slice(eq + 1) };
    });
  })
  .default([]);

/** The optimizer section with every default: the paper's AdamW recipe (METHOD.md). */
export const PAPER_OPTIMIZER = optimizerSchema.parse({});

/** `dfd train` configuration (stage 2). Every number of the paper's recipe is a default here. */
export const trainConfigSchema = z
  .object({
    source: z.string().min(1),
    targets: targetsSchema,
    variant: z.enum(['base', 'att', 'att+eifp']).default('att+eifp'),
    /** Stage-1 extractors, one per MI head, required for att+eifp: `dfd train-eife` folders or zoo ids (`faceapi:recognition`). */
    eife: z.array(z.string().min(1)).default([]),
    /**
     * Standardise each EIFE's targets per dimension, d' = (d - mean) / std, with statistics measured
     * once on (up to 1,024 of) the source's training images. Not in the paper; for pretrained
     * extractors whose embeddings are tiny in scale (face-api's identity descriptor: 0.04 per dimension).
     */
    eifeStandardize: z.boolean().default(false),
    /** Pretrained backbone: a model folder whose efe.* weights initialise it, or a zoo id (`faceapi:expression`). */
    backbone: z.string().optional(),
    /** Keep the pretrained backbone fixed: no gradient, no update, inference-mode batch norm. */
    freezeBackbone: z.boolean().default(false),
    /**
     * With a frozen backbone and few views per image (no augmentation, or flip only), compute each
     * view's trunk features once and reuse them every epoch: `true` (float32, exact), `'float16'`
     * (half the memory, rounded), `false` (the trunk runs on every image every epoch).
     */
    trunkCache: z.union([z.boolean(), z.literal('float16')]).default(true),
    /** Zoo classifiers evaluated on the same targets, as rows of the report (`faceapi:expression`). */
    baselines: z.array(z.string().min(1)).default([]),
    out: z.string().min(1),
    epochs: z.number().int().positive().default(60),
    seed: z.number().int().nonnegative().default(0),
    model: z
      .object({
        width: positive.max(4).default(1),
        inputSize: inputSizeSchema.default(90),
        layout: z.enum(['ddl', 'torchvision', 'faceapi', 'faceapi-xception']).default('ddl'),
        miHidden: z.number().int().positive().optional(),
      })
      .strict()
      .default({ width: 1, inputSize: 90, layout: 'ddl' }),
    data: dataSchema.default(dataSchema.parse({})),
    optimizer: optimizerSchema.default(optimizerSchema.parse({})),
    schedule: scheduleSchema.default(scheduleSchema.parse({})),
    /** `last` (paper) or `source-val`: keep the epoch best on the source's own val split. Never targets. */
    selection: z.enum(['last', 'source-val']).default('last'),
    plugins: z.array(pluginSchema).default([]),
    /** Built-in console progress (stderr) and metrics.jsonl in the run folder. */
    console: z.boolean().default(true),
    jsonl: z.boolean().default(true),
    keepCheckpoints: z.number().int().positive().default(2),
    backend: z.string().default('auto'),
    /** Dataset plugin modules to register (as `--dataset-plugin`): paths (relative to the working directory) or package names. */
    datasetPlugins: z.array(z.string().min(1)).default([]),
    /** How every image (source, targets, baselines) is framed before the model sees it; recorded in model.json (@dfd/zoo's framingSchema). */
    framing: framingSchema.default({ kind: 'resize' }),
  })
  .strict();

/** Validated stage-2 configuration. */
export type TrainConfig = z.output<typeof trainConfigSchema>;
/** Stage-2 configuration as written by a user (defaults optional). */
export type TrainConfigInput = z.input<typeof trainConfigSchema>;

/** `dfd train-eife` configuration (stage 1). */
export const eifeConfigSchema = z
  .object({
    dataset: z.string().min(1),
    factors: z.array(z.string().min(1)).min(1),
    out: z.string().min(1),
    epochs: z.number().int().positive().default(30),
    seed: z.number().int().nonnegative().default(0),
    model: z
      .object({
        width: positive.max(4).default(1),
        inputSize: inputSizeSchema.default(90),
        layout: z.enum(['ddl', 'torchvision']).default('ddl'),
        embedDim: z.number().int().positive().default(256),
      })
      .strict()
      .default({ width: 1, inputSize: 90, layout: 'ddl', embedDim: 256 }),
    data: dataSchema.default(dataSchema.parse({})),
    optimizer: optimizerSchema.default(optimizerSchema.parse({})),
    schedule: scheduleSchema.pick({ cosine: true }).default({ cosine: cosineDefaults }),
    plugins: z.array(pluginSchema).default([]),
    console: z.boolean().default(true),
    jsonl: z.boolean().default(true),
    keepCheckpoints: z.number().int().positive().default(2),
    backend: z.string().default('auto'),
    /** Dataset plugin modules to register (as `--dataset-plugin`). */
    datasetPlugins: z.array(z.string().min(1)).default([]),
    /** How every image is framed (as stage 2's `framing`). */
    framing: framingSchema.default({ kind: 'resize' }),
  })
  .strict();

/** Validated stage-1 configuration. */
export type EifeConfig = z.output<typeof eifeConfigSchema>;
/** Stage-1 configuration as written by a user. */
export type EifeConfigInput = z.input<typeof eifeConfigSchema>;

/** Validate `input` against `schema`; every bad field becomes one line naming its dotted path. */
export function validateConfig<S extends z.ZodType>(schema: S, input: unknown, origin = 'config'): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  const first = r.error.issues[0]!;
  const err = new ConfigError(first.path.join('.') || '(root)', `invalid ${origin}:\n${lines.join('\n')}`);
  // The ConfigError message starts with the field; keep the full list readable.
  Object.defineProperty(err, 'message', { value: `invalid ${origin}:\n${lines.join('\n')}` });
  throw err;
}

/**
 * Parse a config's text into a plain object: JSON when `name` ends in `.json`, else YAML (a JSON
 * document is YAML too). `name` (the file, or any label) goes into the error. Browser-safe; Node's
 * `readConfigFile` (`@dfd/trainer/node`) reads the file and calls this.
 */
export function parseConfigText(text: string, name: string): Record<string, unknown> {
  const json = /\.json$/i.test(name);
  try {
    const value: unknown = json ? JSON.parse(text) : parseYaml(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('the top level must be a mapping');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError('--config', `${name} is not valid ${json ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

/** Deep merge (objects merged, arrays and scalars replaced); `undefined` in `over` keeps `base`. */
export function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isPlain(v) && isPlain(b) ? mergeConfig(b, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Learning rates per group after the rule "no pretrained backbone: backbone lr = heads lr". */
export function resolveLearningRates(opt: { lr: { heads: number; backbone?: number } }, pretrainedBackbone: boolean): { backbone: number; heads: number } {
  return { heads: opt.lr.heads, backbone: opt.lr.backbone ?? (pretrainedBackbone ? 1e-6 : opt.lr.heads) };
}
