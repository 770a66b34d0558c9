export { GrlError } from './errors.js';
export { GradientReversal, gradientReversalLayer, type GradientReversalArgs } from './layer.js';
export { gradientReversal, type Lambda } from './op.js';
export {
  constantLambda,
  dannLambda,
  lambdaAt,
  linearLambda,
  stepLambda,
  validateSchedule,
  type LambdaSchedule,
} from './schedules.js';
