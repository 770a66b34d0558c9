export { EarlyStoppingPlugin, registerEarlyStopping, type EarlyStoppingOptions, type EarlyStoppingState } from './early-stopping.js';
