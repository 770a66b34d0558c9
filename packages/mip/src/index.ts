export { Eife, type EifeConfig, type EifeOptions, type EifeOutputs, type FactorSpec } from './eife.js';
export { Eifp, MiHead, type EifpOptions } from './eifp.js';
export { crossEntropy, eifeLoss, miLoss, smoothL1, stopGradient } from './losses.js';
