import * as tf from '@tensorflow/tfjs-core';
import { layers } from '@tensorflow/tfjs-layers';
import { GrlError } from './errors.js';
import { gradientReversal } from './op.js';
import { lambdaAt, validateSchedule, type LambdaSchedule } from './schedules.js';

// tfjs-layers does not export LayerArgs from its package root in a way Node ESM can see; derive it.
type LayerArgs = NonNullable<ConstructorParameters<typeof layers.Layer>[0]>;

/** Arguments of the GradientReversal layer: a fixed `lambda`, or a `schedule` evaluated at `progress`. */
export interface GradientReversalArgs extends LayerArgs {
  /** Fixed lambda (default 1). With `schedule` set it must equal the schedule's value at `progress`. */
  lambda?: number;
  /** Lambda schedule; the layer's lambda follows it as `setProgress(p)` is called. */
  schedule?: LambdaSchedule;
  /** Training progress in [0, 1] at which `schedule` is evaluated (default 0). */
  progress?: number;
}

/**
 * A tfjs-layers layer that applies {@link gradientReversal}: identity forward, gradient times
 * `-lambda` backward. No weights. Serialisable (className `GradientReversal`, registered on import),
 * so models containing it round-trip through `model.save` / `tf.loadLayersModel` with their lambda.
 * Lambda is read on every call, so `setLambda` / `setProgress` take effect between `fit` batches
 * without recompiling.
 */
export class GradientReversal extends layers.Layer {
  /** Name under which the layer is registered for (de)serialisation. */
  static readonly className = 'GradientReversal';

  private scheduleSpec: LambdaSchedule;
  private progressValue: number;
  private lambdaValue: number;

  constructor(args: GradientReversalArgs = {}) {
    const { lambda, schedule, progress, ...layerArgs } = args;
    super({ ...layerArgs, trainable: layerArgs.trainable ?? false });
    this.supportsMasking = true;
    this.progressValue = checkProgress(progress ?? 0, 'progress');
    if (schedule !== undefined) {
      validateSchedule(schedule);
      this.scheduleSpec = cloneSchedule(schedule);
      this.lambdaValue = lambdaAt(this.scheduleSpec, this.progressValue);
      if (lambda !== undefined && lambda !== this.lambdaValue) {
        throw new GrlError(
          'E_GRL_CONFIG',
          `GradientReversal: lambda ${lambda} contradicts schedule ${JSON.stringify(schedule)} at progress ` +
            `${this.progressValue} (= ${this.lambdaValue}); pass either lambda or schedule.`,
        );
      }
    } else {
      const value = checkLambda(lambda ?? 1);
      this.scheduleSpec = { kind: 'constant', value };
      this.lambdaValue = value;
    }
  }

  /** The lambda applied in the next backward pass. */
  get lambda(): number {
    return this.lambdaValue;
  }

  /** The current schedule (a copy); a fixed lambda is `{kind: 'constant', value}`. */
  get schedule(): LambdaSchedule {
    return cloneSchedule(this.scheduleSpec);
  }

  /** Training progress last given to {@link setProgress}. */
  get progress(): number {
    return this.progressValue;
  }

  /** Fix lambda to `value` (replaces any schedule with a constant one). */
  setLambda(value: number): void {
    this.lambdaValue = checkLambda(value);
    this.scheduleSpec = { kind: 'constant', value: this.lambdaValue };
  }

  /** Replace the schedule; lambda becomes its value at the current progress. */
  setSchedule(schedule: LambdaSchedule): void {
    validateSchedule(schedule);
    this.scheduleSpec = cloneSchedule(schedule);
    this.lambdaValue = lambdaAt(this.scheduleSpec, this.progressValue);
  }

  /** Move to training progress `p` in [0, 1]; lambda becomes the schedule's value at `p`. Returns it. */
  setProgress(p: number): number {
    this.progressValue = checkProgress(p, 'setProgress(p)');
    this.lambdaValue = lambdaAt(this.scheduleSpec, this.progressValue);
    return this.lambdaValue;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs : [inputs];
    if (x.length !== 1) {
      throw new GrlError('E_GRL_INPUT', `GradientReversal '${this.name}': expects exactly one input tensor, got ${x.length}.`);
    }
    return gradientReversal(x[0]!, this.lambdaValue);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      lambda: this.lambdaValue,
      schedule: cloneSchedule(this.scheduleSpec) as unknown as tf.serialization.ConfigDict,
      progress: this.progressValue,
    };
  }
}
tf.serialization.registerClass(GradientReversal);

/** Factory in the style of `tf.layers.*`: `gradientReversalLayer({lambda: 0.5})`. */
export function gradientReversalLayer(args: GradientReversalArgs = {}): GradientReversal {
  return new GradientReversal(args);
}

function checkLambda(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new GrlError('E_GRL_LAMBDA', `GradientReversal: lambda must be a finite number, got ${String(value)}.`);
  }
  return value;
}

function checkProgress(p: unknown, where: string): number {
  if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1) {
    throw new GrlError('E_GRL_PROGRESS', `GradientReversal ${where}: progress must be a number in [0, 1], got ${String(p)}.`);
  }
  return p;
}

function cloneSchedule(s: LambdaSchedule): LambdaSchedule {
  return JSON.parse(JSON.stringify(s)) as LambdaSchedule;
}
