import { DfdError } from '@dfd/core';

/** A tensor handed to a network module has the wrong rank, size or channel count. */
export class ShapeError extends DfdError {
  constructor(where: string, message: string) {
    super('E_SHAPE', `${where}: ${message}`);
  }
}

/** A module option (width, layout, input size...) is invalid; the message names the option. */
export class ModuleOptionError extends DfdError {
  /** The offending option, e.g. `width`. */
  readonly option: string;

  constructor(where: string, option: string, message: string) {
    super('E_MODULE_OPTION', `${where}: option '${option}' ${message}`);
    this.option = option;
  }
}
