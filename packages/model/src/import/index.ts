export { CheckpointFormatError, CheckpointMismatchError, UnsafePickleError, type ShapeMismatch } from './errors.js';
export { PyGlobal, PyObject, PyTuple, unpickle, type GlobalBuilder, type UnpickleOptions } from './pickle.js';
export { parseSafetensors, type SafetensorsParseOptions } from './safetensors.js';
export { MAX_VIEW_EXCESS_ELEMENTS, bfloat16ToFloat, halfToFloat, type SourceDtype, type StateDict, type TensorData, type TensorDtype, type TensorEntry } from './tensor.js';
export { parseTorchCheckpoint, readTorchArchive, StorageRef, TORCH_ALLOWED_GLOBALS, TorchTensor, type TorchArchive, type TorchParseOptions } from './torch.js';
export { STATE_DICT_KEYS, unwrapStateDict, WRAPPER_PREFIXES, type UnwrapOptions, type UnwrapResult } from './unwrap.js';
export { inferBackbone, inferDfdNetConfig, inferEifeConfig, type CheckpointKind, type InferredBackboneConfig, type InferredDfdNetConfig, type InferredEifeConfig } from './infer.js';
export {
  loadStateDictInto,
  parsePrefixMap,
  PrefixMapError,
  remapKeys,
  stateDictOf,
  toTfjsLayout,
  torchToTfjsPerm,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  type PrefixMap,
  type StateDictTarget,
} from './load.js';
