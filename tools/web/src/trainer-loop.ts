// The browser-safe part of @dfd/trainer: the loop (`composeTrainer` -> `Trainer`), the stage-2
// task and the in-memory batch source. The package's main entry also re-exports its Node-only
// run helpers (sharp image decoding, run folders, reports), which cannot be bundled for a
// browser, and it has no browser subpath yet; so the web app imports these modules directly.
// They are the very files `dfd train` runs: the browser trains with the same code.
export { composeTrainer } from '../../../packages/trainer/src/compose.js';
export { tensorBatchSource } from '../../../packages/trainer/src/data.js';
export { DfdTask } from '../../../packages/trainer/src/task.js';
export type { TrainResult } from '../../../packages/trainer/src/trainer.js';
