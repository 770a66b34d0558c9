export { GRAPH_RUNTIME, ZOO, ZooRoleError, ZooUnknownError, installCommand, isZooId, zooEntry, zooEntryFor, type ZooEntry, type ZooRole } from './registry.js';
export {
  FACEAPI_EXPRESSIONS,
  FACEAPI_TO_CANONICAL,
  ZooWeightsError,
  ageGenderForward,
  faceapiDenseName,
  recognitionForward,
  type AgeGenderOutputs,
} from './nets.js';
export { ZooClassifier, ZooExtractor, assignFaceapiTrunk, checkZooWeightBytes, decodeZooWeights, type WeightsManifest } from './models.js';
export {
  HUMAN_EMOTIONS,
  HUMAN_TO_CANONICAL,
  HumanEmotion,
  HumanFaceres,
  emotionInput,
  faceresInput,
  humanAge,
  imagenetToUnit,
  type FaceresOutputs,
  type ZooGraphModel,
} from './human.js';
export {
  TINY_DETECTOR_ANCHORS,
  TINY_DETECTOR_IOU,
  TINY_DETECTOR_MEAN_RGB,
  TinyFaceDetector,
  ZooDetectOptionsError,
  decodeTinyDetections,
  detectOptions,
  imageTensor,
  nonMaxSuppression,
  tinyDetectorForward,
  tinyDetectorInput,
  type DetectOptions,
  type FaceBox,
  type ZooImage,
} from './detector.js';
export { ZooCropError, cropFace, type CropOptions, type FaceCrop } from './crop.js';
export { FaceLandmarker, eyeCentres, landmarks68TinyForward, landmarksInput, type Landmarks68 } from './landmarks.js';
export { loadZooWeightsFromUrl, type ZooFetch } from './url.js';
export {
  ALIGN_TEMPLATE,
  DEFAULT_FRAMING,
  FramingError,
  alignFace,
  alignPoints,
  applySimilarity,
  centreCrop,
  describeFraming,
  fitSimilarity,
  frameImage,
  framingFromKind,
  framingSchema,
  invertSimilarity,
  parseFraming,
  scaleImage,
  warpSimilarity,
  type AlignCase,
  type Framing,
  type FramingInput,
  type FramingNets,
  type Similarity,
} from './framing.js';
