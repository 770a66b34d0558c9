export {
  GAMMA_SCHEDULES,
  LAMBDA_SCHEDULES,
  cosineAnnealingLr,
  createGammaSchedule,
  createLambdaSchedule,
  dannLambda,
  linearRamp,
  paperGamma,
  type GammaScheduleSpec,
  type LambdaScheduleSpec,
  type Schedule,
} from './schedules.js';
export { ScheduleMonitorPlugin, registerSchedulers, type ScheduleMonitorOptions } from './plugin.js';
