import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { Module, createBackbone, globalAvgPool, type Backbone, type BackboneLayout, type ForwardOptions, type StageOutputs } from '@dfd/backbone';
import { Eife, type EifeConfig, type FactorSpec } from '@dfd/mip';

/** Options of {@link createEife} (API.md). */
export interface CreateEifeOptions {
  factors: FactorSpec[];
  width?: number;
  inputSize?: number;
  layout?: BackboneLayout;
  embedDim?: number;
  seed?: number;
}

/** Builds a stage-1 EIFE extractor (backbone + GAP + embed + one head per factor), seeded. */
export function createEife(options: CreateEifeOptions): Eife {
  return new Eife({ ...options, seed: options.seed ?? 0 });
}

/** Rebuilds an EIFE from its `config` (model.json). */
export function eifeFromConfig(config: EifeConfig): Eife {
  return new Eife({ ...config });
}

/** Options / config of a backbone-only model. */
export interface BackboneModelConfig {
  width: number;
  inputSize: number;
  layout: BackboneLayout;
  seed: number;
}

/** What {@link BackboneModel.forward} returns. */
export interface BackboneModelOutputs {
  stages: StageOutputs;
  /** GAP(f_L), [N, C]. */
  pooled: tf.Tensor2D;
}

/** A bare EFE backbone under `efe.*` (e.g. to pre-train, export or load a backbone checkpoint alone). */
export class BackboneModel extends Module {
  /** Model kind in model.json. */
  readonly kind = 'backbone' as const;
  readonly config: BackboneModelConfig;
  readonly efe: Backbone;

  constructor(config: BackboneModelConfig) {
    super();
    this.config = config;
    this.efe = this.addModule('efe', createBackbone({ layout: config.layout, width: config.width, inputSize: config.inputSize, rng: new Rng(config.seed) }));
  }

  /** NHWC batch -> stage outputs and the pooled last stage. */
  forward(x: tf.Tensor4D, options: ForwardOptions): BackboneModelOutputs {
    return tf.tidy(() => {
      const stages = this.efe.forward(x, options);
      return { stages, pooled: globalAvgPool(stages[3]) } as unknown as tf.TensorContainer;
    }) as unknown as BackboneModelOutputs;
  }
}

/** Builds a backbone-only model (`efe.*` names), seeded. */
export function createBackboneModel(options: Partial<BackboneModelConfig> = {}): BackboneModel {
  return new BackboneModel({ width: options.width ?? 1, inputSize: options.inputSize ?? 90, layout: options.layout ?? 'ddl', seed: options.seed ?? 0 });
}
