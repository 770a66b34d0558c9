import { CheckpointFormatError } from './errors.js';
import type { StateDict } from './tensor.js';

/** The kinds of checkpoint `dfd convert` turns into a model directory. */
export type CheckpointKind = 'dfd-net' | 'eife' | 'backbone';

/** Model options read off a DFD-Net state dict (PyTorch names and shapes). */
export interface InferredDfdNetConfig {
  variant: 'base' | 'att' | 'att+eifp';
  width: number;
  layout: 'ddl' | 'torchvision';
  numClasses: number;
  /** Output width of each EIFP MI head (one per EIFE), only for `att+eifp`. */
  miDims?: number[];
  /** Hidden width (fc1 output) of the MI heads, only for `att+eifp`. */
  miHidden?: number;
}

/** Model options read off an EIFE state dict. */
export interface InferredEifeConfig {
  factors: Array<{ name: string; classes: number }>;
  width: number;
  layout: 'ddl' | 'torchvision';
  embedDim: number;
}

/** Backbone options read off the `efe.*` keys. */
export interface InferredBackboneConfig {
  width: number;
  layout: 'ddl' | 'torchvision';
}

/** Width multiplier and layout from the EFE stem (64 base channels = width 1). */
export function inferBackbone(sd: StateDict, name = 'checkpoint'): InferredBackboneConfig {
  const ddl = sd.get('efe.stem.conv.weight');
  const tv = sd.get('efe.conv1.weight');
  const stem = ddl ?? tv;
  if (!stem || stem.shape.length !== 4) {
    throw new CheckpointFormatError(
      name,
      `no EFE stem weight (efe.stem.conv.weight for the DDL layout, efe.conv1.weight for torchvision) among ${sd.size} keys` +
        ` (first: ${[...sd.keys()].slice(0, 5).join(', ')}); map the backbone's prefix with a prefix map (e.g. backbone.=efe. or =efe.)`,
    );
  }
  return { width: stem.shape[0]! / 64, layout: ddl ? 'ddl' : 'torchvision' };
}

/** Variant, width, layout, class count and MI head sizes of a DFD-Net state dict. */
export function inferDfdNetConfig(sd: StateDict, name = 'checkpoint'): InferredDfdNetConfig {
  const { width, layout } = inferBackbone(sd, name);
  const cls = sd.get('classifier.weight');
  if (!cls || cls.shape.length !== 2) throw new CheckpointFormatError(name, 'no classifier.weight [classes, features]: not a DFD-Net checkpoint (for a backbone use kind backbone)');
  const hasAtt = [...sd.keys()].some((k) => k.startsWith('attention.'));
  const miDims: number[] = [];
  for (let i = 0; sd.has(`eifp.heads.${i}.fc2.weight`); i++) miDims.push(sd.get(`eifp.heads.${i}.fc2.weight`)!.shape[0]!);
  const variant = miDims.length > 0 ? 'att+eifp' : hasAtt ? 'att' : 'base';
  const fc1 = sd.get('eifp.heads.0.fc1.weight');
  return { variant, width, layout, numClasses: cls.shape[0]!, ...(miDims.length > 0 ? { miDims, miHidden: fc1?.shape[0] ?? 256 } : {}) };
}

/** Factors (name, classes from `heads.<name>.weight`), embedding size and backbone of an EIFE state dict. */
export function inferEifeConfig(sd: StateDict, name = 'checkpoint'): InferredEifeConfig {
  const { width, layout } = inferBackbone(sd, name);
  const embed = sd.get('embed.weight');
  if (!embed) throw new CheckpointFormatError(name, 'no embed.weight: not an EIFE checkpoint');
  const factors: Array<{ name: string; classes: number }> = [];
  for (const [k, v] of sd) {
    const m = /^heads\.([A-Za-z_][A-Za-z0-9_]*)\.weight$/.exec(k);
    if (m) factors.push({ name: m[1]!, classes: v.shape[0]! });
  }
  if (factors.length === 0) throw new CheckpointFormatError(name, 'no heads.<factor>.weight: an EIFE checkpoint has one linear head per factor');
  return { factors, width, layout, embedDim: embed.shape[0]! };
}
