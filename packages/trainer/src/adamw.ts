import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@dfd/core';
import type { StoredTensor } from './checkpoint-store.js';
import { CheckpointError } from './errors.js';

/** One parameter group: its own learning rate and weight decay (PyTorch param_groups). */
export interface ParamGroup {
  name: string;
  /** [canonical name, variable] pairs; the name keys the optimizer state in checkpoints. */
  params: Array<[string, tf.Variable]>;
  lr: number;
  weightDecay: number;
}

/** Hyper-parameters shared by every group. */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** Optimizer state of one parameter, as plain arrays (checkpoint form). */
export interface AdamWParamState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

/** Checkpoint form of the whole optimizer. */
export interface AdamWState {
  groups: Array<{ name: string; lr: number; weightDecay: number }>;
  params: Record<string, AdamWParamState>;
}

/** The JSON part of the optimizer's checkpoint ({@link AdamW.toCheckpoint}). */
export interface AdamWCheckpointMeta {
  groups: Array<{ name: string; lr: number; weightDecay: number }>;
  /** Steps taken per parameter (its bias correction). */
  steps: Record<string, number>;
}

interface Slot {
  name: string;
  variable: tf.Variable;
  group: ParamGroup;
  m: tf.Variable;
  v: tf.Variable;
  step: number;
}

/**
 * AdamW with decoupled weight decay, exactly PyTorch's `torch.optim.AdamW` (amsgrad off):
 * p <- p (1 - lr wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
 * p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * tfjs has neither AdamW nor parameter groups, and its Adam keys slots by position; here every
 * slot is keyed by the parameter's canonical name so that checkpoints survive reordering.
 */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly groups: ParamGroup[];
  private readonly slots = new Map<string, Slot>();
  private readonly byVariable = new Map<string, Slot>();

  constructor(groups: ParamGroup[], options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    if (!(this.beta1 >= 0 && this.beta1 < 1)) throw new ConfigError('optimizer.beta1', `must be in [0, 1), got ${this.beta1}`);
    if (!(this.beta2 >= 0 && this.beta2 < 1)) throw new ConfigError('optimizer.beta2', `must be in [0, 1), got ${this.beta2}`);
    this.groups = groups;
    for (const group of groups) {
      for (const [name, variable] of group.params) {
        if (this.slots.has(name)) throw new ConfigError('optimizer.groups', `parameter '${name}' is in two parameter groups`);
        const slot: Slot = {
          name,
          variable,
          group,
          m: tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
          v: tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
          step: 0,
        };
        this.slots.set(name, slot);
        this.byVariable.set(variable.name, slot);
      }
    }
  }

  /** Set the learning rate of group `name`. */
  setLearningRate(name: string, lr: number): void {
    const group = this.groups.find((g) => g.name === name);
    if (!group) throw new ConfigError('optimizer.groups', `no parameter group '${name}'`);
    group.lr = lr;
  }

  /** Current learning rate of every group. */
  learningRates(): Record<string, number> {
    return Object.fromEntries(this.groups.map((g) => [g.name, g.lr]));
  }

  /** The variables the optimizer updates, in group order (pass to tf.variableGrads). */
  variables(): tf.Variable[] {
    return [...this.slots.values()].map((s) => s.variable);
  }

  /**
   * Apply one update. `grads` is keyed by tfjs variable name (what tf.variableGrads returns);
   * parameters without a gradient are left alone, like PyTorch's `p.grad is None`.
   */
  applyGradients(grads: tf.NamedTensorMap): void {
    for (const [varName, grad] of Object.entries(grads)) {
      const slot = this.byVariable.get(varName);
      if (!slot) continue;
      slot.step++;
      const { lr, weightDecay } = slot.group;
      const { beta1: b1, beta2: b2, eps } = this;
      const bc1 = 1 - b1 ** slot.step;
      const bc2 = 1 - b2 ** slot.step;
      tf.tidy(() => {
        const p = weightDecay !== 0 ? tf.mul(slot.variable, 1 - lr * weightDecay) : slot.variable;
        const m = tf.add(tf.mul(slot.m, b1), tf.mul(grad, 1 - b1));
        const v = tf.add(tf.mul(slot.v, b2), tf.mul(tf.square(grad), 1 - b2));
        slot.m.assign(m);
        slot.v.assign(v);
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps);
        slot.variable.assign(tf.sub(p, tf.mul(tf.div(m, denom), lr / bc1)));
      });
    }
  }

  /** State for a checkpoint (copies). */
  getState(): AdamWState {
    const params: Record<string, AdamWParamState> = {};
    for (const slot of this.slots.values()) {
      params[slot.name] = { step: slot.step, m: slot.m.dataSync() as Float32Array, v: slot.v.dataSync() as Float32Array };
    }
    return { groups: this.groups.map((g) => ({ name: g.name, lr: g.lr, weightDecay: g.weightDecay })), params };
  }

  /** Restore {@link getState}; every parameter must be present with the right size. */
  setState(state: AdamWState): void {
    for (const slot of this.slots.values()) {
      const saved = state.params[slot.name];
      if (!saved) throw new CheckpointError(`optimizer state has no entry for parameter '${slot.name}'; the checkpoint is from a different model.`);
      const size = slot.variable.size;
      if (saved.m.length !== size || saved.v.length !== size) {
        throw new CheckpointError(`optimizer state for '${slot.name}' has ${saved.m.length} values, the parameter has ${size}.`);
      }
      slot.step = saved.step;
      tf.tidy(() => {
        slot.m.assign(tf.tensor(saved.m, slot.variable.shape));
        slot.v.assign(tf.tensor(saved.v, slot.variable.shape));
      });
    }
    for (const g of state.groups) {
      const group = this.groups.find((x) => x.name === g.name);
      if (group) {
        group.lr = g.lr;
        group.weightDecay = g.weightDecay;
      }
    }
  }

  /**
   * The optimizer's part of a checkpoint: JSON (each group's rate and decay, each parameter's step
   * count) and the moments as tensors `optim/<parameter>/m` and `optim/<parameter>/v`.
   */
  toCheckpoint(): { meta: AdamWCheckpointMeta; tensors: Map<string, StoredTensor> } {
    const state = this.getState();
    const steps: Record<string, number> = {};
    const tensors = new Map<string, StoredTensor>();
    for (const [name, s] of Object.entries(state.params)) {
      steps[name] = s.step;
      tensors.set(`optim/${name}/m`, { shape: [s.m.length], dtype: 'float32', data: s.m });
      tensors.set(`optim/${name}/v`, { shape: [s.v.length], dtype: 'float32', data: s.v });
    }
    return { meta: { groups: state.groups, steps }, tensors };
  }

  /**
   * Restore {@link toCheckpoint} from a checkpoint's JSON and tensors (`where` names the
   * checkpoint in errors). A parameter without a step count starts at 0; one without moments is a
   * CheckpointError.
   */
  fromCheckpoint(meta: AdamWCheckpointMeta, tensors: ReadonlyMap<string, StoredTensor>, where: string): void {
    const params: Record<string, AdamWParamState> = {};
    for (const name of this.slots.keys()) {
      const m = tensors.get(`optim/${name}/m`);
      const v = tensors.get(`optim/${name}/v`);
      if (!m || !v) throw new CheckpointError(`checkpoint ${where} lacks optimizer moments of '${name}'.`);
      params[name] = { step: meta.steps[name] ?? 0, m: m.data as Float32Array, v: v.data as Float32Array };
    }
    this.setState({ groups: meta.groups, params });
  }

  /** Free the moment variables. */
  dispose(): void {
    for (const slot of this.slots.values()) {
      slot.m.dispose();
      slot.v.dispose();
    }
    this.slots.clear();
    this.byVariable.clear();
  }
}
