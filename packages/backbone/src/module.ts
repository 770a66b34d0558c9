import * as tf from '@tensorflow/tfjs-core';

/** What every module's `forward` needs to know: BN uses batch statistics (and updates its running ones) only when training. */
export interface ForwardOptions {
  training: boolean;
}

/**
 * Minimal nn module: parameters, buffers and children are registered under PyTorch's attribute
 * names, so `namedParameters()` yields the same dotted names as `model.state_dict()` of the
 * PyTorch reference (tools/pytorch/dfd_ref.py) and checkpoints map one to one.
 */
export abstract class Module {
  private readonly ownParameters = new Map<string, tf.Variable>();
  private readonly ownBuffers = new Map<string, tf.Variable>();
  private readonly children = new Map<string, Module>();
  private disposed = false;

  /** Registers a trainable variable; the module owns (and later disposes) it. */
  protected addParameter(name: string, value: tf.Tensor): tf.Variable {
    // No variable name: tfjs names must be globally unique and two models may coexist.
    const v = tf.variable(value, true);
    value.dispose();
    this.ownParameters.set(name, v);
    return v;
  }

  /** Registers a non-trainable state tensor (BN running statistics). */
  protected addBuffer(name: string, value: tf.Tensor): tf.Variable {
    const v = tf.variable(value, false);
    value.dispose();
    this.ownBuffers.set(name, v);
    return v;
  }

  /** Registers a child module under `name` (a path segment of the canonical names). */
  protected addModule<M extends Module>(name: string, module: M): M {
    this.children.set(name, module);
    return module;
  }

  /** Trainable variables with canonical dotted names, own first then children in registration order (PyTorch order). */
  namedParameters(prefix = ''): Array<[string, tf.Variable]> {
    const out: Array<[string, tf.Variable]> = [];
    for (const [n, v] of this.ownParameters) out.push([prefix + n, v]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Non-trainable state (BN `running_mean` / `running_var`) with canonical dotted names. */
  namedBuffers(prefix = ''): Array<[string, tf.Variable]> {
    const out: Array<[string, tf.Variable]> = [];
    for (const [n, v] of this.ownBuffers) out.push([prefix + n, v]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Parameters followed by buffers: everything a checkpoint stores. */
  namedState(prefix = ''): Array<[string, tf.Variable]> {
    return [...this.namedParameters(prefix), ...this.namedBuffers(prefix)];
  }

  /** Child modules with dotted names, depth first. */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    for (const [n, c] of this.children) {
      out.push([prefix + n, c], ...c.namedModules(`${prefix}${n}.`));
    }
    return out;
  }

  /** Trainable variables in canonical order (the same order every call, as optimizers need). */
  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  /** Number of trainable scalars; BN running statistics are not counted (as PyTorch's `sum(p.numel() for p in m.parameters())`). */
  numParameters(): number {
    return this.parameters().reduce((s, v) => s + v.size, 0);
  }

  /** Frees every variable of this module and its children; the module is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.ownParameters.values()) v.dispose();
    for (const v of this.ownBuffers.values()) v.dispose();
    for (const c of this.children.values()) c.dispose();
  }
}

/** Children indexed 0..n-1, as PyTorch's nn.ModuleList / nn.Sequential name them. */
export class ModuleList<M extends Module> extends Module {
  private readonly items: M[] = [];

  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }

  /** Appends a module under the next index. */
  push(m: M): void {
    this.addModule(String(this.items.length), m);
    this.items.push(m);
  }

  /** The i-th module. */
  at(i: number): M {
    const m = this.items[i];
    if (m === undefined) throw new RangeError(`ModuleList.at(${i}): only ${this.items.length} modules`);
    return m;
  }

  /** Number of modules. */
  get length(): number {
    return this.items.length;
  }

  /** The modules in order. */
  toArray(): M[] {
    return [...this.items];
  }
}
