import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import {
  Linear,
  Module,
  ModuleOptionError,
  PReLU,
  createBackbone,
  globalAvgPool,
  toRng,
  type Backbone,
  type BackboneLayout,
  type ForwardOptions,
} from '@dfd/backbone';

/** One expression-irrelevant factor and its class count (e.g. gender 3, identity 337). */
export interface FactorSpec {
  name: string;
  classes: number;
}

/** Options of {@link Eife}. */
export interface EifeOptions {
  factors: FactorSpec[];
  width?: number;
  inputSize?: number;
  layout?: BackboneLayout;
  /** Size of the embedding d (default 256). */
  embedDim?: number;
  /** Seed of the weight init, used when `rng` is not given (default 0); recorded in `config`. */
  seed?: number;
  /** A shared generator instead of `seed`. */
  rng?: Rng;
}

/** Plain-JSON description of an EIFE, enough to rebuild it (serialisation). */
export interface EifeConfig {
  factors: FactorSpec[];
  width: number;
  inputSize: number;
  layout: BackboneLayout;
  embedDim: number;
  seed: number;
}

/** What {@link Eife.forward} returns. */
export interface EifeOutputs {
  /** d = PReLU(embed(GAP(f_L))), [N, embedDim]: the expression-irrelevant feature used by EIFP. */
  embedding: tf.Tensor2D;
  /** One logits tensor per factor. */
  logits: Record<string, tf.Tensor2D>;
}

class FactorHeads extends Module {
  readonly byName = new Map<string, Linear>();

  constructor(inFeatures: number, factors: FactorSpec[], rng: Rng) {
    super();
    for (const f of factors) this.byName.set(f.name, this.addModule(f.name, new Linear(inFeatures, f.classes, { rng })));
  }
}

/**
 * Stage-1 expression-irrelevant feature extractor (EIFE, Eq. 1-2): backbone (`efe.*`), global
 * average pool, `embed` Linear C -> embedDim with PReLU `embed_act`, and a linear head per factor
 * (`heads.<factor>`).
 */
export class Eife extends Module {
  readonly efe: Backbone;
  readonly embed: Linear;
  readonly embedAct: PReLU;
  readonly heads: FactorHeads;
  readonly factors: readonly FactorSpec[];
  readonly embedDim: number;
  /** Options as plain JSON (serialised into model.json). */
  readonly config: EifeConfig;

  constructor(options: EifeOptions) {
    super();
    const rng = options.rng ?? toRng(options.seed ?? 0);
    if (!Array.isArray(options.factors) || options.factors.length === 0) {
      throw new ModuleOptionError('Eife', 'factors', 'must list at least one {name, classes} factor');
    }
    const seen = new Set<string>();
    for (const f of options.factors) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(f.name) || seen.has(f.name)) {
        throw new ModuleOptionError('Eife', 'factors', `names must be unique identifiers (letters, digits, _), got ${JSON.stringify(f.name)}`);
      }
      if (!Number.isInteger(f.classes) || f.classes < 2) {
        throw new ModuleOptionError('Eife', 'factors', `factor '${f.name}' needs an integer class count >= 2, got ${String(f.classes)}`);
      }
      seen.add(f.name);
    }
    this.factors = options.factors.map((f) => ({ ...f }));
    this.embedDim = options.embedDim ?? 256;
    this.efe = this.addModule('efe', createBackbone({ layout: options.layout, width: options.width, inputSize: options.inputSize, rng }));
    this.config = {
      factors: this.factors.map((f) => ({ ...f })),
      width: options.width ?? 1,
      inputSize: this.efe.inputSize,
      layout: this.efe.layout,
      embedDim: this.embedDim,
      seed: options.seed ?? 0,
    };
    const c = this.efe.channels[3]!;
    this.embed = this.addModule('embed', new Linear(c, this.embedDim, { rng }));
    this.embedAct = this.addModule('embed_act', new PReLU());
    this.heads = this.addModule('heads', new FactorHeads(this.embedDim, this.factors as FactorSpec[], rng));
  }

  /** Image batch (NHWC) -> embedding d and per-factor logits. */
  forward(x: tf.Tensor4D, options: ForwardOptions): EifeOutputs {
    return tf.tidy(() => {
      const stages = this.efe.forward(x, options);
      const embedding = this.embedAct.forward(this.embed.forward(globalAvgPool(stages[3])));
      const logits: Record<string, tf.Tensor2D> = {};
      for (const [name, head] of this.heads.byName) logits[name] = head.forward(embedding);
      return { embedding, logits };
    });
  }

  /** Only the embedding d (what stage 2 consumes); cheaper than forward when logits are not needed. */
  embedOnly(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.embedAct.forward(this.embed.forward(globalAvgPool(this.efe.forward(x, { training: false })[3]))));
  }
}
