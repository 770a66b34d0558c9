export { ZOO, ZooRoleError, ZooUnknownError, installCommand, isZooId, zooEntry, zooEntryFor, type ZooEntry, type ZooRole } from './registry.js';
export {
  FACEAPI_EXPRESSIONS,
  FACEAPI_TO_CANONICAL,
  ZooWeightsError,
  ageGenderForward,
  faceapiDenseName,
  recognitionForward,
  type AgeGenderOutputs,
} from './nets.js';
export { ZooClassifier, ZooExtractor, assignFaceapiExpression, decodeZooWeights, type WeightsManifest } from './models.js';
