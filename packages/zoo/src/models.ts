import * as tf from '@tensorflow/tfjs-core';
import { FaceapiDenseNet, imagenetToFaceapi } from '@dfd/backbone';
import { FACEAPI_TO_CANONICAL, ZooWeightsError, ageGenderForward, faceapiDenseName, recognitionForward } from './nets.js';
import { zooEntryFor, type ZooEntry } from './registry.js';

/** A tfjs weights manifest (`*-weights_manifest.json`): groups of shard paths and weight specs. */
export type WeightsManifest = Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;

/** Throws ZooWeightsError unless `data` has exactly the bytes the manifest describes (quantised weights counted at their stored width). */
export function checkZooWeightBytes(manifest: WeightsManifest, data: ArrayBuffer): void {
  const specs = manifest.flatMap((g) => g.weights);
  const expected = specs.reduce((s, spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = spec.quantization ? (spec.quantization.dtype === 'float16' || spec.quantization.dtype === 'uint16' ? 2 : 1) : 4;
    return s + n * bytes;
  }, 0);
  if (data.byteLength !== expected) {
    throw new ZooWeightsError(`zoo weights are ${data.byteLength} bytes but the manifest describes ${expected}; the package files are truncated or from another version.`);
  }
}

/** Decodes a manifest and its shards (concatenated in manifest order) into named tensors; uint8 quantisation is undone. */
export function decodeZooWeights(manifest: WeightsManifest, data: ArrayBuffer): tf.NamedTensorMap {
  checkZooWeightBytes(manifest, data);
  return tf.io.decodeWeights(data, manifest.flatMap((g) => g.weights));
}

/**
 * Copies a face-api net's trunk (every weight but its `fc` heads) into the dfd backbone that
 * rebuilds it ({@link FaceapiDenseNet} for the expression net, `FaceapiXceptionNet` for the
 * age/gender net), or into a model holding one under `prefix` (DFD-Net's `efe.`); with
 * `classifier`, also the expression net's `fc` into that Linear (columns put in the canonical
 * class order). Every backbone parameter must be covered. Returns the number of tensors copied.
 */
export function assignFaceapiTrunk(
  model: { namedParameters(): Array<[string, tf.Variable]> },
  map: tf.NamedTensorMap,
  prefix = '',
  classifier?: string,
): number {
  const params = new Map(model.namedParameters());
  let n = 0;
  for (const [name, t] of Object.entries(map)) {
    const dfd = faceapiDenseName(name);
    if (dfd === null) continue;
    const v = params.get(prefix + dfd);
    if (!v) throw new ZooWeightsError(`the model has no parameter '${prefix + dfd}' for face-api weight '${name}'; build it with layout 'faceapi'.`);
    if (v.shape.join('x') !== t.shape.join('x')) throw new ZooWeightsError(`face-api weight '${name}' is ${t.shape.join('x')}, '${prefix + dfd}' is ${v.shape.join('x')}.`);
    v.assign(t);
    n++;
  }
  const trunk = prefix === '' ? [...params.keys()] : [...params.keys()].filter((k) => k.startsWith(prefix));
  if (n !== trunk.length) throw new ZooWeightsError(`copied ${n} face-api weights but the backbone has ${trunk.length} parameters; the weights are for another layout.`);
  if (classifier) {
    const cw = params.get(`${classifier}.weight`);
    const cb = params.get(`${classifier}.bias`);
    if (!cw || !cb) throw new ZooWeightsError(`the model has no '${classifier}.weight' / '${classifier}.bias'.`);
    const fc = canonicalFc(map);
    try {
      if (cw.shape.join('x') !== fc.weight.shape.join('x')) throw new ZooWeightsError(`classifier '${classifier}.weight' is ${cw.shape.join('x')}, face-api's fc is ${fc.weight.shape.join('x')}.`);
      cw.assign(fc.weight);
      cb.assign(fc.bias);
    } finally {
      tf.dispose([fc.weight, fc.bias]);
    }
    n += 2;
  }
  return n;
}

/** face-api's expression classifier (`fc/weights`, `fc/bias`) with its columns in the canonical class order. */
function canonicalFc(map: tf.NamedTensorMap): { weight: tf.Tensor2D; bias: tf.Tensor1D } {
  const fw = map['fc/weights'];
  const fb = map['fc/bias'];
  if (!fw || !fb) throw new ZooWeightsError("face-api weights have no 'fc/weights' / 'fc/bias'.");
  return tf.tidy(() => {
    const idx = tf.tensor1d([...FACEAPI_TO_CANONICAL], 'int32');
    return { weight: tf.gather(fw, idx, 1) as tf.Tensor2D, bias: tf.gather(fb, idx, 0) as tf.Tensor1D };
  });
}

function toInputSize(x: tf.Tensor4D, size: number): tf.Tensor4D {
  // face-api resizes with resizeBilinear(alignCorners false, halfPixelCenters false); the face-api
  // scaling is per-channel affine, so resizing before or after it gives the same numbers.
  return x.shape[1] === size && x.shape[2] === size ? x : tf.image.resizeBilinear(x, [size, size], false, false);
}

/**
 * A frozen zoo network used as an EIFE (stage-1 extractor): its embedding is the MI target d_k.
 * It has the surface the trainer expects of an EIFE (`forward` -> `embedding`), no trainable
 * parameters, and takes dfd's ImageNet-normalised batches at any size (it resizes to its own).
 */
export class ZooExtractor {
  readonly kind = 'zoo-eife' as const;
  readonly entry: ZooEntry;
  readonly embedDim: number;

  constructor(
    readonly id: string,
    private readonly weights: tf.NamedTensorMap,
  ) {
    this.entry = zooEntryFor(id, 'eife');
    this.embedDim = this.entry.embedDim!;
  }

  /** [N, H, W, 3] ImageNet-normalised -> `embedding` [N, embedDim]; `logits` is empty (no factor heads). */
  forward(x: tf.Tensor4D, _options?: { training: boolean }): { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> } {
    return tf.tidy(() => {
      const input = toInputSize(imagenetToFaceapi(x), this.entry.inputSize);
      if (this.id === 'faceapi:recognition') return { embedding: recognitionForward(this.weights, input), logits: {} };
      const out = ageGenderForward(this.weights, input);
      return { embedding: out.features, logits: {} };
    }) as { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> };
  }

  /** Nothing trains. */
  namedParameters(): Array<[string, tf.Variable]> {
    return [];
  }

  /** No state. */
  namedBuffers(): Array<[string, tf.Variable]> {
    return [];
  }

  /** Frees the weights. */
  dispose(): void {
    tf.dispose(Object.values(this.weights));
  }
}

/**
 * A zoo expression classifier used as it ships (the baseline a user would pick instead of dfd):
 * logits in the canonical class order, from dfd's ImageNet-normalised batches at any size.
 */
export class ZooClassifier {
  readonly kind = 'zoo-classifier' as const;
  readonly entry: ZooEntry;
  private readonly trunk: FaceapiDenseNet;
  private readonly fcW: tf.Tensor2D;
  private readonly fcB: tf.Tensor1D;

  constructor(
    readonly id: string,
    weights: tf.NamedTensorMap,
  ) {
    this.entry = zooEntryFor(id, 'classifier');
    this.trunk = new FaceapiDenseNet({ inputSize: this.entry.inputSize });
    assignFaceapiTrunk(this.trunk, weights);
    const fc = canonicalFc(weights);
    this.fcW = fc.weight;
    this.fcB = fc.bias;
    tf.dispose(Object.values(weights));
  }

  /** [N, H, W, 3] ImageNet-normalised -> canonical-order logits [N, 7] (softmax gives face-api's probabilities). */
  forward(x: tf.Tensor4D, _options?: { training: boolean }): { logits: tf.Tensor2D } {
    return tf.tidy(() => {
      const stages = this.trunk.forward(toInputSize(x, this.entry.inputSize));
      const last = stages[3];
      // face-api: avgPool 7x7 stride 2 'valid' on the 7x7 map = the global average.
      const pooled = tf.reshape(tf.avgPool(last, [7, 7], [2, 2], 'valid'), [last.shape[0], -1]) as tf.Tensor2D;
      return { logits: tf.add(tf.matMul(pooled, this.fcW), this.fcB) as tf.Tensor2D };
    }) as { logits: tf.Tensor2D };
  }

  /** Frees the weights. */
  dispose(): void {
    this.trunk.dispose();
    tf.dispose([this.fcW, this.fcB]);
  }
}
