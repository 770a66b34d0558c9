export type {
  Dataset,
  DatasetContext,
  DatasetPlugin,
  DatasetSpec,
  DatasetWarning,
  DecodeHint,
  FactorSpec,
  FloatImage,
  ImageDecoder,
  ImageSource,
  LabelSet,
  RgbImage,
  Sample,
  SpecOptions,
  SplitName,
  ValidationIssue,
} from './types.js';
export { DatasetFormatError, DatasetSpecError, ImageDecodeError, type FormatErrorLocation } from './errors.js';
export { choiceOption, escapeSpecLocation, intOption, parseSpec, unescapeSpecLocation } from './spec.js';
export { DATASET_REGISTRY, DatasetRegistry, assertDatasetPlugin, createDatasetContext, setSpecPathProbe, type ResolveOptions } from './registry.js';
export {
  AFFECTNET_TO_CANONICAL,
  CLASS_SYNONYMS,
  EXPRESSION_NAMES,
  FER2013_TO_CANONICAL,
  FERPLUS_COLUMNS,
  FERPLUS_TO_CANONICAL,
  ageGroup,
  expressionFromName,
  ferplusMajority,
} from './labels.js';
export {
  browserImageDecoder,
  decodeImage,
  describeSource,
  getDefaultImageDecoder,
  parsePixelString,
  resizeBox,
  resizeImage,
  setDefaultImageDecoder,
  toRgb,
  toUint8,
  type Box,
} from './image.js';
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  applyJitter,
  colorJitter,
  compose,
  evalTransform,
  flipHorizontal,
  normalize,
  randomHorizontalFlip,
  randomResizedCrop,
  resize,
  sampleCropBox,
  sampleJitter,
  trainTransform,
  type ColorJitterOptions,
  type JitterFactors,
  type RandomResizedCropOptions,
  type TrainTransformOptions,
  type Transform,
} from './transforms.js';
export { createLoader, disposeBatch, type Batch, type Loader, type LoaderOptions, type LoaderState } from './loader.js';
export { limitSamples, type LimitOptions } from './subset.js';
export {
  SYNTHETIC_DOMAINS,
  SYNTHETIC_IDENTITIES,
  createSyntheticDataset,
  renderFace,
  sampleFaceParams,
  syntheticFactors,
  syntheticOptionsFromSpec,
  syntheticPlugin,
  type FaceParams,
  type SyntheticDomain,
  type SyntheticOptions,
} from './synthetic.js';
export { createDatasetRegistry } from './builtin.js';
