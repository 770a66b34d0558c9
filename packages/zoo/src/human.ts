import * as tf from '@tensorflow/tfjs-core';
import { ZooWeightsError } from './nets.js';
import { zooEntryFor, type ZooEntry } from './registry.js';

/**
 * Human's (@vladmandic/human) face nets as dfd zoo models. They ship as TensorFlow.js graph models
 * (`models/faceres.json`, `models/emotion.json`), so dfd runs them as they ship, through
 * tfjs-converter's GraphModel (loaded by `@dfd/zoo/node`), and replicates only what Human does
 * around them (human/src/face/faceres.ts `enhance()` and `predict()`, src/gear/emotion.ts
 * `predict()`), which a test checks against Human's own pipeline.
 */

/** The part of tfjs-converter's GraphModel the zoo uses (structural, so this module needs only tfjs-core). */
export interface ZooGraphModel {
  readonly inputs: Array<{ shape?: number[] }>;
  execute(inputs: tf.Tensor, outputs?: string | string[]): tf.Tensor | tf.Tensor[];
  dispose(): void;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/**
 * Human's emotion labels in its output order, for its greyscale (oarriaga, FER2013-trained) net:
 * human/src/gear/emotion.ts `load()`, `annotations` when the input has 1 channel.
 */
export const HUMAN_EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] as const;

/**
 * For each canonical class (0 surprise, 1 fear, 2 disgust, 3 happiness, 4 sadness, 5 anger,
 * 6 neutral; METHOD.md), its column in Human's emotion output.
 */
export const HUMAN_TO_CANONICAL: readonly number[] = [5, 2, 1, 3, 4, 0, 6];

/** dfd's ImageNet-normalised batch back to RGB in 0..1 (the range of the face crops Human's detector hands its face nets). */
export function imagenetToUnit(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.mul(x, IMAGENET_STD), IMAGENET_MEAN));
}

/** Square side of a graph model's input (`inputs[0].shape` is [N, H, W, C]). */
function graphInputSize(model: ZooGraphModel, entry: ZooEntry): { size: number; channels: number } {
  const shape = model.inputs[0]?.shape;
  const size = shape?.[1];
  if (!shape || shape.length !== 4 || !size || size !== shape[2] || size !== entry.inputSize) {
    throw new ZooWeightsError(`${entry.id}: the graph model's input is [${shape?.join(', ') ?? '?'}], expected [-1, ${entry.inputSize}, ${entry.inputSize}, C]; the installed ${entry.package} is not the version dfd expects.`);
  }
  return { size, channels: shape[3]! };
}

/**
 * Human's faceres input from dfd's batch: `enhance()` with its default config (no `crop`):
 * `resizeBilinear(face01, [H, W], false)` to the model's input size, then `* 255`.
 */
export function faceresInput(x: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const unit = imagenetToUnit(x);
    const resized = unit.shape[1] === size && unit.shape[2] === size ? unit : tf.image.resizeBilinear(unit, [size, size], false);
    return tf.mul(resized, 255);
  });
}

/**
 * Human's emotion input from dfd's batch (emotion.ts `predict()`, greyscale model, no `crop`):
 * `resizeBilinear(face01, [64, 64], false)`, grey = sum over channels of
 * `rgb * [0.2989, 0.5870, 0.1140]` (kept as a 1-channel axis), then `(grey - 0.5) * 2`.
 */
export function emotionInput(x: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const unit = imagenetToUnit(x);
    const resized = unit.shape[1] === size && unit.shape[2] === size ? unit : tf.image.resizeBilinear(unit, [size, size], false);
    const grey = tf.sum(tf.mul(resized, tf.tensor1d([0.2989, 0.587, 0.114], 'float32')), 3, true);
    return tf.mul(tf.sub(grey, 0.5), 2);
  });
}

/** Human's age in years from faceres' 100-bin age softmax of one face (faceres.ts `predict()`, rounded to 0.1 as Human does). */
export function humanAge(bins: ArrayLike<number>): number {
  let idx = 0;
  for (let i = 1; i < bins.length; i++) if (bins[i]! > bins[idx]!) idx = i;
  const below = idx > 0 ? bins[idx - 1]! : undefined;
  const above = idx + 1 < bins.length ? bins[idx + 1]! : undefined;
  // Human: all[i - 1] > all[i + 1] ? 10 i - 100 all[i - 1] : 10 i + 100 all[i + 1] (out of range reads undefined -> false).
  const age = below !== undefined && above !== undefined && below > above ? 10 * idx - 100 * below : 10 * idx + 100 * (above ?? Number.NaN);
  return Math.round(age) / 10;
}

/** Every output of Human's faceres net for a batch. */
export interface FaceresOutputs {
  /** [N, 1024] `global_pooling/Mean`: Human's face descriptor (`FaceResult.embedding`), also what the age and gender heads read. */
  descriptor: tf.Tensor2D;
  /** [N, 100] `age_pred/Softmax`: age bins (see {@link humanAge}). */
  age: tf.Tensor2D;
  /** [N, 1] `gender_pred/Sigmoid`: probability of male (Human: <= 0.5 female). */
  gender: tf.Tensor2D;
}

/**
 * `human:faceres` as a frozen EIFE: Human's face-description net (HSE FaceRes, a MobileNet-style
 * net at 224 px); the embedding (MI target d_k) is its 1024-d descriptor, the global pool that its
 * age and gender heads read, so it carries identity, age and gender at once.
 */
export class HumanFaceres {
  readonly kind = 'zoo-eife' as const;
  readonly entry: ZooEntry;
  readonly embedDim: number;
  private readonly size: number;

  constructor(
    readonly id: string,
    private readonly model: ZooGraphModel,
  ) {
    this.entry = zooEntryFor(id, 'eife');
    this.embedDim = this.entry.embedDim!;
    this.size = graphInputSize(model, this.entry).size;
  }

  /** All three outputs: descriptor, age bins, gender. [N, H, W, 3] ImageNet-normalised, any size. */
  outputs(x: tf.Tensor4D): FaceresOutputs {
    return tf.tidy(() => {
      const out = this.model.execute(faceresInput(x, this.size));
      const list = Array.isArray(out) ? out : [out];
      // Human picks the outputs by width (faceres.ts): 1 gender, 100 age, 1024 descriptor.
      const by = (w: number) => {
        const t = list.find((o) => o.shape.length === 2 && o.shape[1] === w);
        if (!t) throw new ZooWeightsError(`${this.id}: the graph model has no [N, ${w}] output (outputs: ${list.map((o) => `[${o.shape.join(', ')}]`).join(' ')}).`);
        return t as tf.Tensor2D;
      };
      return { descriptor: by(this.embedDim), age: by(100), gender: by(1) };
    });
  }

  /** [N, H, W, 3] ImageNet-normalised -> `embedding` [N, 1024] (the descriptor); `logits` is empty (no factor heads). */
  forward(x: tf.Tensor4D, _options?: { training: boolean }): { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> } {
    return tf.tidy(() => ({ embedding: this.outputs(x).descriptor, logits: {} })) as { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> };
  }

  /** Nothing trains. */
  namedParameters(): Array<[string, tf.Variable]> {
    return [];
  }

  /** No state. */
  namedBuffers(): Array<[string, tf.Variable]> {
    return [];
  }

  /** Frees the graph's weights. */
  dispose(): void {
    this.model.dispose();
  }
}

/**
 * `human:emotion` as a baseline classifier: Human's 7-class expression net (oarriaga's mini
 * Xception, trained on FER2013, 64 px greyscale), its probabilities put in the canonical class order.
 */
export class HumanEmotion {
  readonly kind = 'zoo-classifier' as const;
  readonly entry: ZooEntry;
  private readonly size: number;

  constructor(
    readonly id: string,
    private readonly model: ZooGraphModel,
  ) {
    this.entry = zooEntryFor(id, 'classifier');
    const { size, channels } = graphInputSize(model, this.entry);
    if (channels !== 1) throw new ZooWeightsError(`${id}: the graph model takes ${channels} channels; dfd knows Human's greyscale emotion net (1 channel, labels ${HUMAN_EMOTIONS.join(', ')}).`);
    this.size = size;
  }

  /** Human's probabilities in Human's own order ({@link HUMAN_EMOTIONS}), [N, 7]. */
  probabilities(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const out = this.model.execute(emotionInput(x, this.size));
      const p = (Array.isArray(out) ? out[0]! : out) as tf.Tensor2D;
      if (p.shape.length !== 2 || p.shape[1] !== HUMAN_EMOTIONS.length) throw new ZooWeightsError(`${this.id}: the graph model's output is [${p.shape.join(', ')}], expected [N, 7].`);
      return p;
    });
  }

  /**
   * [N, H, W, 3] ImageNet-normalised -> canonical-order logits [N, 7]: the log of Human's
   * probabilities (the net ends in a softmax), so softmax(logits) gives them back.
   */
  forward(x: tf.Tensor4D, _options?: { training: boolean }): { logits: tf.Tensor2D } {
    return tf.tidy(() => {
      const p = tf.gather(this.probabilities(x), tf.tensor1d([...HUMAN_TO_CANONICAL], 'int32'), 1);
      return { logits: tf.log(tf.maximum(p, 1e-30)) as tf.Tensor2D };
    });
  }

  /** Frees the graph's weights. */
  dispose(): void {
    this.model.dispose();
  }
}
