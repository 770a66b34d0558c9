import { Command, CommanderError } from 'commander';
import { DfdError } from '@dfd/core';
import { registerCommands } from './commands/index.js';
import { CLI_VERSION } from './version.js';

/** Build the `dfd` program with every command registered. */
export function createProgram(): Command {
  const program = new Command('dfd')
    .description('DFD-Net: single-domain generalized facial expression recognition on TensorFlow.js')
    .version(CLI_VERSION, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Run the CLI on `argv` (as `process.argv`) and return the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help/version exit with code 0; usage errors were already printed by commander.
      return err.exitCode;
    }
    if (err instanceof DfdError) {
      process.stderr.write(`dfd: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`dfd: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
