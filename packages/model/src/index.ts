export {
  DFD_VARIANTS,
  DfdNet,
  createDfdNet,
  resolveDfdNetConfig,
  type DfdNetConfig,
  type DfdNetDetailedOutputs,
  type DfdNetOptions,
  type DfdNetOutputs,
  type DfdVariant,
  type ParamGroups,
} from './dfdnet.js';
export { ModelDirRefusedError, ModelFormatError, ModelWriteError, NonFiniteWeightsError } from './errors.js';
export {
  BackboneModel,
  createBackboneModel,
  createEife,
  eifeFromConfig,
  type BackboneModelConfig,
  type BackboneModelOutputs,
  type CreateEifeOptions,
} from './others.js';
export {
  createModelFromConfig,
  findNonFinite,
  loadModelFromUrl,
  modelFromArtifacts,
  modelKind,
  modelToArtifacts,
  modelFraming,
  setModelFraming,
  type DfdModel,
  type ModelArtifacts,
  type ModelJson,
  type ModelKind,
  type WeightEntry,
} from './serialize.js';
export { Eife, type EifeConfig, type EifeOutputs, type FactorSpec } from '@dfd/mip';
export { parseManifest, type WebManifest } from './web-manifest.js';
export * from './import/index.js';
