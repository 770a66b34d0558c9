import 'reflect-metadata';
export { EventBus, type EventHandler } from './bus.js';
export { createContainer, type ContainerOptions } from './container.js';
export { ConfigError, DfdError, describeFsError } from './errors.js';
export type { DfdEvent, DfdEventType, EvaluationResult, EventOf, LossParts } from './events.js';
export { EXPRESSIONS, NUM_EXPRESSIONS, type Expression } from './labels.js';
export { PluginHost, PluginRegistry, mergePlugins, type DfdPlugin, type PluginContext, type PluginFactory, type StepControls, type StepHookContext, type StopRequest } from './plugin.js';
export {
  COSINE_LR_PARAMS,
  GAMMA_SCHEDULES,
  GAMMA_SCHEDULE_PARAMS,
  LAMBDA_SCHEDULES,
  LAMBDA_SCHEDULE_PARAMS,
  followsRule,
  resolveGammaSpec,
  resolveLambdaSpec,
  resolveScheduleSpec,
  type CosineLrSpec,
  type GammaScheduleSpec,
  type LambdaScheduleSpec,
  type ScheduleParam,
  type ScheduleParamRule,
} from './schedules.js';
export { Rng } from './rng.js';
export { TOKENS } from './tokens.js';
export { inject, injectable, singleton, type DependencyContainer, type InjectionToken } from 'tsyringe';
