import type { Command } from 'commander';
import { registerConvert } from './convert.js';
import { registerData } from './data.js';
import { registerExport } from './export.js';
import { registerInfo } from './info.js';
import { registerTrain } from './train.js';
import { registerTrainEife } from './train-eife.js';
import { registerEval } from './eval.js';
import { registerDemo } from './demo.js';
import { registerPredict } from './predict.js';
import { registerModels } from './models.js';
import { registerGrid } from './grid.js';

/** Every `dfd` sub-command, in the order `dfd --help` lists them. One line per command. */
export function registerCommands(program: Command): void {
  registerInfo(program);
  registerTrainEife(program);
  registerTrain(program);
  registerEval(program);
  registerModels(program);
  registerDemo(program);
  registerGrid(program);
  registerConvert(program);
  registerPredict(program);
  registerExport(program);
  registerData(program);
}
