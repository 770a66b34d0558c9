import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { Linear, Module, ModuleList, PReLU, toRng } from '@dfd/backbone';
import { gradientReversal } from '@dfd/grl';

/** One MIP head (`eifp.heads.k.*`): `fc1` Linear, PReLU `act`, `fc2` Linear predicting d_k. */
export class MiHead extends Module {
  readonly fc1: Linear;
  readonly act: PReLU;
  readonly fc2: Linear;

  constructor(inFeatures: number, hidden: number, outFeatures: number, rng?: Rng | number) {
    super();
    const r = toRng(rng);
    this.fc1 = this.addModule('fc1', new Linear(inFeatures, hidden, { rng: r }));
    this.act = this.addModule('act', new PReLU());
    this.fc2 = this.addModule('fc2', new Linear(hidden, outFeatures, { rng: r }));
  }

  /** [N, in] -> d^_k [N, out]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.fc2.forward(this.act.forward(this.fc1.forward(x))));
  }
}

/** Options of {@link Eifp}. */
export interface EifpOptions {
  /** Width of Att_out (512 at full width). */
  inFeatures: number;
  /** Output size of each head = embedding size of each EIFE extractor (default [256, 256]). */
  miDims?: number[];
  /** Hidden size of every head's fc1 (default 256). */
  hidden?: number;
  /** GRL coefficient lambda (default 1). */
  lambda?: number;
  rng?: Rng | number;
}

/**
 * EIFP (Eq. 7-9): Att_out -> GRL -> one MIP head per expression-irrelevant extractor. The GRL
 * makes the heads minimise L_MI while the features feeding them are pushed to maximise it.
 */
export class Eifp extends Module {
  readonly heads: ModuleList<MiHead>;
  readonly miDims: readonly number[];
  private lambdaValue: number;

  constructor(options: EifpOptions) {
    super();
    const rng = toRng(options.rng);
    this.miDims = options.miDims ?? [256, 256];
    const hidden = options.hidden ?? 256;
    this.lambdaValue = options.lambda ?? 1;
    this.heads = this.addModule('heads', new ModuleList(this.miDims.map((d) => new MiHead(options.inFeatures, hidden, d, rng))));
  }

  /** The GRL coefficient. */
  get lambda(): number {
    return this.lambdaValue;
  }

  /** Sets the GRL coefficient (e.g. from a schedule); takes effect on the next forward. */
  setLambda(lambda: number): void {
    if (!Number.isFinite(lambda)) throw new RangeError(`Eifp.setLambda: lambda must be finite, got ${lambda}`);
    this.lambdaValue = lambda;
  }

  /** Att_out [N, C] -> one prediction d^_k per head. */
  forward(attOut: tf.Tensor2D): tf.Tensor2D[] {
    return tf.tidy(() => {
      const r = gradientReversal(attOut, this.lambdaValue);
      return this.heads.toArray().map((h) => h.forward(r));
    });
  }
}
