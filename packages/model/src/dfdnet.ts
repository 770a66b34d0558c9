import * as tf from '@tensorflow/tfjs-core';
import { NUM_EXPRESSIONS, Rng } from '@dfd/core';
import { AttentionBlock, ClassifierHead } from '@dfd/attention';
import {
  Module,
  ModuleOptionError,
  ShapeError,
  createBackbone,
  fuseStages,
  globalAvgPool,
  type Backbone,
  type BackboneLayout,
  type ForwardOptions,
  type StageOutputs,
} from '@dfd/backbone';
import { Eifp } from '@dfd/mip';

/** Ablations of Table 1: backbone + GAP + classifier, + attention block, + EIFP (full DFD-Net). */
export type DfdVariant = 'base' | 'att' | 'att+eifp';

/** The variants, in Table 1 order. */
export const DFD_VARIANTS: readonly DfdVariant[] = ['base', 'att', 'att+eifp'];

/** Options of {@link createDfdNet}; every field but `variant` has the paper's default. */
export interface DfdNetOptions {
  variant: DfdVariant;
  /** Channel multiplier, 1 = 64 base channels (paper); 0.125 for tests and demos. */
  width?: number;
  /** Square input side, default 90. */
  inputSize?: number;
  /** Backbone layout, default 'ddl'. */
  layout?: BackboneLayout;
  /** Embedding size of each EIFE extractor = output of each MI head (default [256, 256]). */
  miDims?: number[];
  /** Hidden size (fc1 output) of each MI head, default 256. */
  miHidden?: number;
  /** Expression classes, default 7. */
  numClasses?: number;
  /** GRL coefficient lambda at creation, default 1. */
  lambda?: number;
  /** Weight-init seed, default 0. */
  seed?: number;
}

/** {@link DfdNetOptions} with every default filled in: plain JSON, stored in model.json. */
export type DfdNetConfig = Required<DfdNetOptions>;

/** What {@link DfdNet.forward} returns. */
export interface DfdNetOutputs {
  /** Expression logits [N, numClasses]. */
  logits: tf.Tensor2D;
  /** Att_out [N, C] (variants with the attention block). */
  attOut?: tf.Tensor2D;
  /** d^_k per EIFE extractor (att+eifp only), behind the GRL. */
  miPredictions?: tf.Tensor2D[];
}

/** Every intermediate of a forward pass, for parity tests and visualisation. */
export interface DfdNetDetailedOutputs extends DfdNetOutputs {
  stages: StageOutputs;
  /** f_fused (Eq. 3), attention variants only. */
  fused?: tf.Tensor4D;
  /** Attention mask (attention variants only). */
  mask?: tf.Tensor4D;
  /** The vector the classifier sees: Att_out, or GAP(f_L) for `base`. */
  features: tf.Tensor2D;
}

/** Trainable variables split for per-group learning rates (backbone 1e-6 vs heads 5e-4 in the paper). */
export interface ParamGroups {
  /** `efe.*`. */
  backbone: tf.Variable[];
  /** attention, classifier, EIFP. */
  heads: tf.Variable[];
}

function positiveInt(v: number, where: string, option: string): number {
  if (!Number.isInteger(v) || v < 1) throw new ModuleOptionError(where, option, `must be a positive integer, got ${String(v)}`);
  return v;
}

/** Fills defaults and validates; throws ModuleOptionError naming the bad option. */
export function resolveDfdNetConfig(options: DfdNetOptions): DfdNetConfig {
  const where = 'createDfdNet';
  if (!DFD_VARIANTS.includes(options.variant)) {
    throw new ModuleOptionError(where, 'variant', `must be one of ${DFD_VARIANTS.map((v) => `'${v}'`).join(', ')}, got ${JSON.stringify(options.variant)}`);
  }
  const miDims = options.miDims ?? [256, 256];
  if (!Array.isArray(miDims) || miDims.length === 0) throw new ModuleOptionError(where, 'miDims', 'must be a non-empty array of head sizes');
  miDims.forEach((d, i) => positiveInt(d, where, `miDims[${i}]`));
  const lambda = options.lambda ?? 1;
  if (!Number.isFinite(lambda)) throw new ModuleOptionError(where, 'lambda', `must be a finite number, got ${String(lambda)}`);
  return {
    variant: options.variant,
    width: options.width ?? 1,
    inputSize: options.inputSize ?? (options.layout?.startsWith('faceapi') ? 112 : 90),
    layout: options.layout ?? 'ddl',
    miDims: [...miDims],
    miHidden: positiveInt(options.miHidden ?? 256, where, 'miHidden'),
    numClasses: positiveInt(options.numClasses ?? NUM_EXPRESSIONS, where, 'numClasses'),
    lambda,
    seed: options.seed ?? 0,
  };
}

/**
 * DFD-Net (Fig. 1): EFE backbone (`efe`), multi-level fusion + attention block (`attention`),
 * expression `classifier`, and EIFP (`eifp`: GRL + MI heads). Parameter names equal the PyTorch
 * reference's state_dict keys (tools/pytorch/dfd_ref.py).
 */
export class DfdNet extends Module {
  /** Model kind in model.json. */
  readonly kind = 'dfd-net' as const;
  readonly config: DfdNetConfig;
  readonly efe: Backbone;
  readonly attention: AttentionBlock | null;
  readonly classifier: ClassifierHead;
  readonly eifp: Eifp | null;
  private backboneFrozen = false;

  constructor(config: DfdNetConfig) {
    super();
    this.config = config;
    // One stream for the whole model, consumed in registration order: same seed, same weights.
    const rng = new Rng(config.seed);
    this.efe = this.addModule('efe', createBackbone({ layout: config.layout, width: config.width, inputSize: config.inputSize, rng }));
    const [c1, c2, c3, c4] = this.efe.channels as [number, number, number, number];
    this.attention = config.variant === 'base' ? null : this.addModule('attention', new AttentionBlock({ fusedChannels: c1 + c2 + c3, channels: c4, rng }));
    this.classifier = this.addModule('classifier', new ClassifierHead(c4, config.numClasses, rng));
    this.eifp =
      config.variant === 'att+eifp'
        ? this.addModule('eifp', new Eifp({ inFeatures: c4, miDims: config.miDims, hidden: config.miHidden, lambda: config.lambda, rng }))
        : null;
  }

  /** GRL coefficient (1 when there is no EIFP). */
  get lambda(): number {
    return this.eifp?.lambda ?? this.config.lambda;
  }

  /** Sets the GRL lambda used by the next forward passes (no-op for variants without EIFP). */
  setLambda(lambda: number): void {
    if (!Number.isFinite(lambda)) throw new RangeError(`DfdNet.setLambda: lambda must be finite, got ${lambda}`);
    this.eifp?.setLambda(lambda);
  }

  /**
   * Freezes the EFE backbone (`--freeze-backbone`): it then always runs in inference mode (batch
   * norm uses and keeps its running statistics), and {@link trainableParameters} leaves `efe.*`
   * out, so an optimizer gives it no gradient and tfjs runs no backward pass through it.
   */
  setBackboneFrozen(frozen: boolean): void {
    this.backboneFrozen = frozen;
  }

  /** Whether {@link setBackboneFrozen} froze the backbone. */
  get isBackboneFrozen(): boolean {
    return this.backboneFrozen;
  }

  /** The parameters that train: all, or all but `efe.*` while the backbone is frozen. */
  trainableParameters(): Array<[string, tf.Variable]> {
    const all = this.namedParameters();
    return this.backboneFrozen ? all.filter(([name]) => !name.startsWith('efe.')) : all;
  }

  /**
   * What the heads read from the trunk, in a fixed order: `[GAP(f_L)]` for `base`, `[f_fused, f_L]`
   * (Eq. 3 fusion and the last stage) for the attention variants. With a frozen backbone these
   * depend on the image only, so a trainer may compute them once per image and feed them to
   * {@link forwardFromTrunk} (bit-identical to {@link forward}). The backbone runs in inference
   * mode when frozen, else with `options`.
   */
  trunkFeatures(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor[] {
    return tf.tidy(() => this.trunkOf(this.efe.forward(x, this.backboneFrozen ? { training: false } : options)));
  }

  /** Names of the tensors {@link trunkFeatures} returns, in order. */
  get trunkFeatureNames(): readonly string[] {
    return this.attention ? ['fused', 'last'] : ['pooled'];
  }

  private trunkOf(stages: StageOutputs): tf.Tensor[] {
    return this.attention ? [fuseStages(stages), stages[3]] : [globalAvgPool(stages[3])];
  }

  /**
   * The heads (attention block, classifier, EIFP) on precomputed {@link trunkFeatures}: with a
   * frozen backbone, `forwardFromTrunk(trunkFeatures(x), o)` equals `forward(x, o)` exactly.
   * Throws a ShapeError when `trunk` does not match this variant (one tensor for `base`, two else).
   */
  forwardFromTrunk(trunk: readonly tf.Tensor[], options: ForwardOptions): DfdNetOutputs {
    const names = this.trunkFeatureNames;
    if (trunk.length !== names.length) {
      throw new ShapeError('DfdNet.forwardFromTrunk', `variant '${this.config.variant}' reads ${names.length} trunk tensor(s) (${names.join(', ')}), got ${trunk.length}`);
    }
    return tf.tidy(() => {
      const d = this.headsFrom(trunk, options);
      const out: DfdNetOutputs = { logits: d.logits! };
      if (d.attOut) out.attOut = d.attOut;
      if (d.miPredictions) out.miPredictions = d.miPredictions;
      return out as unknown as tf.TensorContainer;
    }) as unknown as DfdNetOutputs;
  }

  private headsFrom(trunk: readonly tf.Tensor[], options: ForwardOptions): Partial<DfdNetDetailedOutputs> {
    const out: Partial<DfdNetDetailedOutputs> = {};
    if (this.attention) {
      const fused = trunk[0] as tf.Tensor4D;
      const att = this.attention.forwardDetailed(fused, trunk[1] as tf.Tensor4D, options);
      out.fused = fused;
      out.mask = att.mask;
      out.attOut = att.attOut;
      out.features = att.attOut;
    } else {
      out.features = trunk[0] as tf.Tensor2D;
    }
    out.logits = this.classifier.forward(out.features);
    if (this.eifp && out.attOut) out.miPredictions = this.eifp.forward(out.attOut);
    return out;
  }

  /** Forward pass returning every intermediate. */
  forwardDetailed(x: tf.Tensor4D, options: ForwardOptions): DfdNetDetailedOutputs {
    return tf.tidy(() => {
      const stages = this.efe.forward(x, this.backboneFrozen ? { training: false } : options);
      const out = { stages, ...this.headsFrom(this.trunkOf(stages), options) };
      return out as unknown as tf.TensorContainer;
    }) as unknown as DfdNetDetailedOutputs;
  }

  /** NHWC image batch (normalised, inputSize x inputSize) -> logits, Att_out and MI predictions. */
  forward(x: tf.Tensor4D, options: ForwardOptions): DfdNetOutputs {
    return tf.tidy(() => {
      const d = this.forwardDetailed(x, options);
      const out: DfdNetOutputs = { logits: d.logits };
      if (d.attOut) out.attOut = d.attOut;
      if (d.miPredictions) out.miPredictions = d.miPredictions;
      return out as unknown as tf.TensorContainer;
    }) as unknown as DfdNetOutputs;
  }

  /** Trainable variables split into backbone (`efe.*`) and heads (everything else). */
  paramGroups(): ParamGroups {
    const backbone: tf.Variable[] = [];
    const heads: tf.Variable[] = [];
    for (const [name, v] of this.namedParameters()) (name.startsWith('efe.') ? backbone : heads).push(v);
    return { backbone, heads };
  }
}

/** Builds a DFD-Net variant with deterministic (seeded, PyTorch-default) initial weights. */
export function createDfdNet(options: DfdNetOptions): DfdNet {
  return new DfdNet(resolveDfdNetConfig(options));
}
